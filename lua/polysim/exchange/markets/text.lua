-- The text of the synthetic universe: seeded questions (and outcome labels) per category.
local _M = {}

local PEOPLE = { "Alex Moreno", "Dana Whitfield", "Priya Raman", "Jonas Berg", "Marisol Vega",
  "Tom Okafor", "Hana Sato", "Luis Ferreira", "Grace Lindqvist", "Omar Haddad" }
local PLACES = { "Ohio", "Arizona", "Ontario", "Bavaria", "Victoria", "Catalonia", "Georgia",
  "Nevada", "Quebec", "Lombardy" }
local OFFICES = { "governor", "senate", "mayoral", "presidential", "parliamentary" }
local COUNTRIES = { "France", "Germany", "Japan", "Brazil", "Canada", "India", "Mexico",
  "Italy", "Spain", "Poland", "Chile", "Kenya" }
local TEAMS = { "Lions", "Falcons", "Rovers", "Comets", "Mariners", "Titans", "Wolves",
  "Hawks", "Pirates", "Giants", "Sharks", "Bulls" }
local LEAGUES = { "NBA", "NFL", "Premier League", "Serie A", "NHL", "MLS" }
local MONTHS = { "January", "February", "March", "April", "May", "June", "July", "August",
  "September", "October", "November", "December" }
local COINS = { { "Bitcoin", 120000 }, { "Ethereum", 5000 }, { "Solana", 300 }, { "XRP", 4 } }
local FILMS = { "Starfall", "The Quiet Harbor", "Neon Orchard", "Paper Kings", "Blue Meridian" }
local ARTISTS = { "Lena Cruz", "The Midnight Vale", "Kofi Mensah", "Ivy Rhodes" }

local function binary_question(r, cat, year)
  local y = tostring(year)
  if cat == "politics" then
    local k = r:below(3)
    if k == 0 then
      return ("Will %s win the %s %s %s election?"):format(r:pick(PEOPLE), y, r:pick(PLACES), r:pick(OFFICES))
    elseif k == 1 then
      return ("Will %s hold a snap election before %s %s?"):format(r:pick(COUNTRIES), r:pick(MONTHS), y)
    end
    return ("Will %s's approval rating be above %d%% on %s 1, %s?"):format(r:pick(PEOPLE),
      r:range(35, 55), r:pick(MONTHS), y)
  elseif cat == "sports" then
    return ("Will the %s %s win the %s %s title?"):format(r:pick(PLACES), r:pick(TEAMS), y, r:pick(LEAGUES))
  elseif cat == "crypto" then
    local coin = r:pick(COINS)
    local level = coin[2] * r:range(8, 14) // 10
    return ("Will %s close above $%d on %s %d, %s?"):format(coin[1], level, r:pick(MONTHS), r:range(1, 28), y)
  elseif cat == "economics" then
    if r:chance(1, 2) then
      return ("Will the Fed cut rates at the %s %s meeting?"):format(r:pick(MONTHS), y)
    end
    return ("Will US CPI inflation exceed %d.%d%% in %s %s?"):format(r:range(2, 4), r:below(10), r:pick(MONTHS), y)
  elseif cat == "geopolitics" then
    local a, b = r:pick(COUNTRIES), r:pick(COUNTRIES)
    if a == b then b = "its neighbours" end
    return ("Will %s and %s sign a trade agreement by %s %s?"):format(a, b, r:pick(MONTHS), y)
  elseif cat == "culture" then
    if r:chance(1, 2) then
      return ("Will \"%s\" gross over $%dM on its opening weekend?"):format(r:pick(FILMS), r:range(4, 20) * 10)
    end
    return ("Will %s release a new album in %s?"):format(r:pick(ARTISTS), y)
  end
  return ("Will a crewed mission land on the Moon before %s %s?"):format(r:pick(MONTHS), y)
end

local function multi_question(r, cat, year)
  local y = tostring(year)
  if cat == "sports" then
    local league = r:pick(LEAGUES)
    local labels, seen = {}, {}
    while #labels < r:range(4, 5) do
      local t = r:pick(TEAMS)
      if not seen[t] then seen[t] = true; labels[#labels + 1] = t end
    end
    return ("Who will win the %s %s championship?"):format(y, league), labels
  elseif cat == "economics" then
    return ("How many Fed rate cuts in %s?"):format(y), { "0", "1", "2", "3 or more" }
  elseif cat == "culture" then
    return ("Which film will win Best Picture %s?"):format(y), { FILMS[1], FILMS[2], FILMS[3], FILMS[4] }
  end
  local labels, seen = {}, {}
  while #labels < 4 do
    local p = r:pick(PEOPLE)
    if not seen[p] then seen[p] = true; labels[#labels + 1] = p end
  end
  return ("Who will win the %s %s %s election?"):format(y, r:pick(PLACES), r:pick(OFFICES)), labels
end

_M.binary_question, _M.multi_question = binary_question, multi_question

return _M
