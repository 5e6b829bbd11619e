std = "lua54"
max_line_length = 150
exclude_files = { "build/", "build-*/", "luarocks-tree/" }
files["spec/"] = { std = "+busted" }
files["spec/output.lua"] = { std = "lua54" }
