describe("smoke", function() it("loads core", function() assert.is_table(require("polysim.core")) end) end)
