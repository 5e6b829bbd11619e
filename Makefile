# polysim: build, test, run, bench, install.  `make help` lists the targets.
LUA_VERSION     ?= 5.4
LUA             ?= lua$(LUA_VERSION)
LUA_INCLUDE_DIR ?= /usr/include/lua$(LUA_VERSION)
LUA_LIB         ?= -llua$(LUA_VERSION)
PREFIX          ?= /usr/local
LUA_SHARE_DIR   ?= $(PREFIX)/share/lua/$(LUA_VERSION)
LUA_LIB_DIR     ?= $(PREFIX)/lib/lua/$(LUA_VERSION)
MAN_DIR         ?= $(PREFIX)/share/man
CC              ?= cc
CFLAGS          ?= -O2 -g
BUILD           ?= build

CWARNS = -Wall -Wextra -Werror -Wshadow -Wpointer-arith -Wcast-align -Wwrite-strings \
         -Wstrict-prototypes -Wmissing-prototypes -Wnested-externs -Wundef -Wformat=2
LIBS   = $(shell pkg-config --libs libcurl libmicrohttpd 2>/dev/null || echo -lcurl -lmicrohttpd) -lm
XCFLAGS = -std=c11 -D_GNU_SOURCE -fPIC -fvisibility=hidden $(CWARNS) -I$(LUA_INCLUDE_DIR) -Iinclude $(CFLAGS)

# Every C file but the host and the command is part of the module: a new file needs no edit here.
CORE_SRC = $(filter-out src/host.c src/main.c,$(sort $(wildcard src/*.c)))
HOST_SRC = src/host.c
CORE_OBJ = $(CORE_SRC:src/%.c=$(BUILD)/obj/%.o)
HOST_OBJ = $(HOST_SRC:src/%.c=$(BUILD)/obj/%.o)
HEADERS  = $(wildcard src/*.h include/*.h)

CORE_SO  = $(BUILD)/lib/polysim/core.so
EXE      = $(BUILD)/bin/polysim
LIBHOST  = $(BUILD)/lib/libpolysim.a

# Running from the source tree: our Lua files and core.so come first.
RUN_ENV = LUA_PATH_5_4="$(CURDIR)/lua/?.lua;$(CURDIR)/lua/?/init.lua;$(CURDIR)/spec/?.lua;;" \
          LUA_CPATH_5_4="$(CURDIR)/$(BUILD)/lib/?.so;;" POLYSIM_EXE="$(CURDIR)/$(EXE)"
BUSTED  = $(LUA) /usr/bin/busted
# spec/sdk_scripts_spec.lua runs the official SDK's scripts when the user names its source
# (make test POLYSIM_SDK_DIR=/path/to/sdk); never set otherwise.
ifdef POLYSIM_SDK_DIR
export POLYSIM_SDK_DIR
endif

.PHONY: doc dashboard-shot rockspec all deps build test spec ctest check asan valgrind fuzz lint run bench install uninstall clean help coverage coverage-run
all: build

help:
	@echo "make run      build and run the default example strategy on the embedded exchange"
	@echo "make test     install missing packages, build, run every spec; ends with 'N passed, N failed, N skipped'"
	@echo "make serve    run the local exchange (polysim serve)"
	@echo "make bench    run the benchmarks in bench/"
	@echo "make doc      the API reference (LDoc, config.ld) in $(BUILD)/doc; fails on any LDoc warning"
	@echo "make soak     10,000 orders through a fault proxy + a 5-minute exchange soak (SOAK_SECONDS)"
	@echo "make check    test + lint + AddressSanitizer/UBSan run"
	@echo "make valgrind memcheck: the C tests and spec/valgrind_spec.lua (definite leaks, memory errors)"
	@echo "make coverage C (gcov/lcov) and Lua line coverage of the whole test run"
	@echo "make fuzz     libFuzzer runs: WebSocket frame parser, json_decode, decode_error (needs clang)"
	@echo "make install  install module, Lua files, the polysim command and its man page under PREFIX"
	@echo "make man      docs/polysim.1 and README's polysim --help block from the command's option table"
	@echo "make dist     build/dist: the versioned rockspec and source archive (luarocks install, offline)"

deps:
	@sh scripts/deps.sh

build: deps $(CORE_SO) $(EXE)

$(BUILD)/obj/%.o: src/%.c $(HEADERS) Makefile
	@mkdir -p $(dir $@)
	@echo "  CC $@"; $(CC) $(XCFLAGS) -DPOLYSIM_LUADIR='"$(POLYSIM_LUADIR)"' -c -o $@ $<

# No build path is compiled in: the Lua files are found beside the executable, from
# $$POLYSIM_LUA_DIR or the lua_dir option; `make install` compiles its prefix in.
POLYSIM_LUADIR ?=

$(CORE_SO): $(CORE_OBJ)
	@mkdir -p $(dir $@)
	@echo "  LD $@"; $(CC) -shared -o $@ $(CORE_OBJ) $(LIBS) $(LDFLAGS)

$(LIBHOST): $(CORE_OBJ) $(HOST_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(EXE): $(BUILD)/obj/main.o $(LIBHOST)
	@mkdir -p $(dir $@)
	@echo "  LD $@"; $(CC) -o $@ $(BUILD)/obj/main.o $(LIBHOST) $(LUA_LIB) $(LIBS) -ldl $(LDFLAGS)

# The embedding example and the C-level tests of the embedding API (examples/embed/).
EMBED    = $(BUILD)/bin/embed
C_TESTS  = $(BUILD)/tests/embed
build: $(EMBED) $(C_TESTS)

$(EMBED): examples/embed/embed.c include/polysim.h $(LIBHOST)
	@mkdir -p $(dir $@)
	@echo "  LD $@"; $(CC) $(XCFLAGS) -o $@ $< $(LIBHOST) $(LUA_LIB) $(LIBS) -ldl $(LDFLAGS)

$(BUILD)/tests/embed: examples/embed/embed_test.c include/polysim.h $(LIBHOST)
	@mkdir -p $(dir $@)
	@echo "  LD $@"; $(CC) $(XCFLAGS) -o $@ $< $(LIBHOST) $(LUA_LIB) $(LIBS) -ldl $(LDFLAGS)

# A 60 fps loop running examples/embed/strategy.lua on an in-process exchange; prints its
# worst frame time.
.PHONY: embed
embed: build
	$(RUN_ENV) $(EMBED) examples/embed/strategy.lua $${EMBED_SECONDS:-5}

# The seeded fault proxy of the failure specs and `make soak` (spec/fault_proxy.c).
FAULT_PROXY = $(BUILD)/bin/fault_proxy
build: $(FAULT_PROXY)
$(FAULT_PROXY): spec/fault_proxy.c Makefile
	@mkdir -p $(dir $@)
	@echo "  LD $@"; $(CC) $(XCFLAGS) -pthread -o $@ $< -pthread $(LDFLAGS)

# The test command: specs under Lua 5.4, then the C-level tests; one closing count.
test: build
	@$(RUN_ENV) $(LUA) spec/run.lua --build=$(BUILD) $(SPEC)

lint: deps
	luacheck -q lua spec examples bench

run: build
	$(RUN_ENV) $(EXE) run examples/mean_reversion.lua --duration $${DURATION:-20}

serve: build
	$(RUN_ENV) $(EXE) serve --port $${PORT:-8000}

# A screenshot of the live dashboard after 20 s of trading (needs Debian's chromium).
dashboard-shot: build
	$(RUN_ENV) $(LUA) scripts/dashboard-shot.lua $(EXE) $(BUILD)/dashboard.png $${SECONDS_:-20}

bench: build
	@$(RUN_ENV) sh bench/run.sh

# Not part of `make test`: 10,000 orders through the fault proxy (0 duplicates, 0 unresolved), then a 5-minute exchange soak (SOAK_SECONDS) printing RSS.
.PHONY: soak
soak: build
	@$(RUN_ENV) $(LUA) bench/soak_orders.lua
	@$(RUN_ENV) $(LUA) bench/soak_exchange.lua

# The sanitizers of `make asan`, `make check` and the fuzz targets.
SANITIZE = -fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=undefined,float-cast-overflow
asan:
	$(MAKE) BUILD=build-asan CFLAGS="-O1 -g $(SANITIZE) -fno-omit-frame-pointer" LDFLAGS="$(SANITIZE)" build
	@# The ASan-linked polysim runs busted itself (polysim exec): no LD_PRELOAD, which child
	@# processes (pkill, sh, polysim) would inherit and can deadlock in.
	@# --build=build-asan: the C embedding tests run from there, ASan-linked too.
	$(RUN_ENV) ASAN_OPTIONS=detect_leaks=0 POLYSIM_EXE="$(CURDIR)/build-asan/bin/polysim" \
	  build-asan/bin/polysim exec spec/run.lua --build=build-asan $(SPEC)

check: test lint asan

# Memcheck (definite leaks and memory errors; Lua's and libcurl's process-lifetime
# allocations are only "possibly lost"): the C embedding tests, then spec/valgrind_spec.lua
# (a loop dropped with watches open, a short polysim run). Not part of check: ~1 min.
VALGRIND = valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite
valgrind: build
	@command -v valgrind >/dev/null || { echo "valgrind missing: apt-get install -y valgrind"; exit 1; }
	@for t in $(C_TESTS); do echo "  VALGRIND $$t"; $(RUN_ENV) $(VALGRIND) $$t || exit 1; done
	@$(RUN_ENV) $(LUA) spec/run.lua --build=$(BUILD) spec/valgrind_spec.lua

# libFuzzer run of the WebSocket parser (needs clang): FUZZ_SECONDS (60) on a scratch copy
# of fuzz/corpus; findings go to build-fuzz/, never into the repository.
FUZZ_CC    ?= clang
FUZZ_FLAGS  = -std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer \
              -fsanitize=fuzzer,address,undefined,float-cast-overflow \
              -fno-sanitize-recover=undefined,float-cast-overflow \
              -I$(LUA_INCLUDE_DIR) -Isrc -Iinclude
build-fuzz/ws_fuzz: fuzz/ws_fuzz.c src/ws.c src/sha1.c src/header.c src/ws.h src/internal.h
	@mkdir -p build-fuzz
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ fuzz/ws_fuzz.c src/ws.c src/sha1.c src/header.c $(LUA_LIB)

# core.json_decode and core.decode_error through the whole module (fuzz/json_fuzz.c,
# fuzz/error_fuzz.c); their seeds are fuzz/corpus_json and fuzz/corpus_error.
FUZZ_TARGETS = ws_fuzz json_fuzz error_fuzz
build-fuzz/json_fuzz build-fuzz/error_fuzz: build-fuzz/%: fuzz/%.c $(CORE_SRC) $(HEADERS)
	@mkdir -p build-fuzz
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ fuzz/$*.c $(CORE_SRC) $(LUA_LIB) $(LIBS) -ldl

# Each target FUZZ_SECONDS (60) on a scratch copy of its corpus (leak checks off for the Lua
# targets: a Lua state frees garbage later than the input that made it).
fuzz: $(FUZZ_TARGETS:%=build-fuzz/%)
	@set -e; for t in $(FUZZ_TARGETS); do \
	  c=fuzz/corpus_$${t%_fuzz}; [ "$$t" = ws_fuzz ] && c=fuzz/corpus; \
	  rm -rf build-fuzz/corpus-$$t && mkdir -p build-fuzz/corpus-$$t && cp $$c/* build-fuzz/corpus-$$t/; \
	  l=0; [ "$$t" = ws_fuzz ] && l=1; \
	  echo "== $$t"; build-fuzz/$$t -max_total_time=$${FUZZ_SECONDS:-60} -print_final_stats=1 -detect_leaks=$$l \
	    -artifact_prefix=build-fuzz/$$t- build-fuzz/corpus-$$t 2>&1 | grep -E "^stat::number_of_executed_units|^stat::average_exec|ERROR|SUMMARY|invariant|fuzz:"; \
	done

# Line coverage: C through gcov/lcov (a --coverage build in build-cov/), Lua through
# spec/coverage.lua (a C line hook, src/cov.c, loaded by LUA_INIT_5_4 into every lua5.4
# the specs start; luacov is not in Debian); both over the whole `make test` run.
COV_SANE = -O0 -g --coverage
coverage: deps
	@command -v lcov >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && apt-get install -y -q lcov >/dev/null; } || \
	  { echo "make coverage needs lcov (apt-get install lcov)"; exit 1; }
	$(MAKE) --no-print-directory BUILD=build-cov CFLAGS="$(COV_SANE)" LDFLAGS="--coverage" build
	@# The C tests' own .gcno/.gcda would sit in build-cov/tests/, where every file is a test.
	rm -f build-cov/tests/*.gcno build-cov/tests/*.gcda
	rm -rf build-cov/luacov && mkdir -p build-cov/luacov
	lcov -q --zerocounters --directory build-cov/obj
	-$(MAKE) --no-print-directory BUILD=build-cov CFLAGS="$(COV_SANE)" LDFLAGS="--coverage" coverage-run
	lcov -q --capture --directory build-cov/obj --output-file build-cov/c.info 2>/dev/null
	lcov -q --extract build-cov/c.info '*/src/*' --output-file build-cov/c.info 2>/dev/null
	@lcov --summary build-cov/c.info 2>&1 | sed -n 's/^ *lines\.*: */C line coverage (src): /p'
	@if [ "$(COVERAGE_LUA)" = 1 ]; then $(LUA) spec/coverage_report.lua build-cov/luacov; fi

# COVERAGE_LUA=0: C only (the Lua line hook is C, src/cov.c: the run is a little slower).
COVERAGE_LUA ?= 1
coverage-run:
	@if [ "$(COVERAGE_LUA)" = 1 ]; then export LUA_INIT_5_4="@$(CURDIR)/spec/coverage.lua" \
	  POLYSIM_LUACOV_DIR="$(CURDIR)/build-cov/luacov"; fi; \
	  $(RUN_ENV) $(LUA) spec/run.lua --build=$(BUILD) $(SPEC)

install: build
	install -d $(DESTDIR)$(LUA_LIB_DIR)/polysim $(DESTDIR)$(PREFIX)/bin
	@# every Lua file, its folders kept (client/, strategy/, exchange/api/, backtest/, ...)
	cd lua && find polysim -name '*.lua' | while read -r f; do \
	  install -D -m 644 "$$f" "$(DESTDIR)$(LUA_SHARE_DIR)/$$f" || exit 1; done
	install -m 755 $(CORE_SO) $(DESTDIR)$(LUA_LIB_DIR)/polysim/core.so
	$(MAKE) BUILD=build-install POLYSIM_LUADIR=$(LUA_SHARE_DIR) build-install/bin/polysim
	install -m 755 build-install/bin/polysim $(DESTDIR)$(PREFIX)/bin/polysim
	install -D -m 644 docs/polysim.1 $(DESTDIR)$(MAN_DIR)/man1/polysim.1

# The embedding API for other programs: include/polysim.h, the static library and a
# polysim.pc, so `cc app.c $$(pkg-config --cflags --libs polysim)` builds against it.
PKGCONFIG_DIR ?= $(PREFIX)/lib/pkgconfig
POLYSIM_VERSION = $(shell sed -n 's/^\#define POLYSIM_VERSION "\(.*\)"/\1/p' src/internal.h)
.PHONY: install-embed
install: install-embed
install-embed: deps
	rm -rf build-install
	$(MAKE) BUILD=build-install POLYSIM_LUADIR=$(LUA_SHARE_DIR) build-install/lib/libpolysim.a
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PKGCONFIG_DIR)
	install -m 644 include/polysim.h $(DESTDIR)$(PREFIX)/include/polysim.h
	install -m 644 build-install/lib/libpolysim.a $(DESTDIR)$(PREFIX)/lib/libpolysim.a
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(POLYSIM_VERSION)|' \
	    -e 's|@LIBS@|$(LUA_LIB) $(LIBS) -ldl|' pkgconfig/polysim.pc.in > $(DESTDIR)$(PKGCONFIG_DIR)/polysim.pc

# The rockspec is named after POLYSIM_VERSION (src/internal.h): one version everywhere.
ROCKSPEC = rockspec/polysim-$(POLYSIM_VERSION)-1.rockspec
rockspec:
	@rm -f $(filter-out $(ROCKSPEC),$(wildcard rockspec/polysim-*.rockspec))
	$(LUA) scripts/gen-rockspec.lua > $(ROCKSPEC)

# A release: the rockspec and the source archive it names, side by side in $(BUILD)/dist;
# `cd $(BUILD)/dist && luarocks install polysim-$(POLYSIM_VERSION)-1.rockspec` (the rockspec
# names the archive by a relative path) or `luarocks install $(BUILD)/dist/polysim-…src.rock`
# from anywhere installs it with no network. The archive holds the tracked files as they are
# in the working tree.
DIST = $(BUILD)/dist
.PHONY: dist
dist:
	rm -rf $(DIST) && mkdir -p $(DIST)
	git ls-files -z | tar --null -T - --transform 's,^,polysim-$(POLYSIM_VERSION)/,' \
	  -czf $(DIST)/polysim-$(POLYSIM_VERSION).tar.gz
	$(LUA) scripts/gen-rockspec.lua > $(DIST)/polysim-$(POLYSIM_VERSION)-1.rockspec
	@# the two in one .src.rock (a zip), which `luarocks install FILE` takes from any directory
	cd $(DIST) && zip -q polysim-$(POLYSIM_VERSION)-1.src.rock polysim-$(POLYSIM_VERSION)-1.rockspec \
	  polysim-$(POLYSIM_VERSION).tar.gz
	@echo "$(DIST): polysim-$(POLYSIM_VERSION)-1.rockspec, polysim-$(POLYSIM_VERSION).tar.gz, polysim-$(POLYSIM_VERSION)-1.src.rock"

# docs/polysim.1 and README.md's `polysim --help` block from the command's option table
# (polysim.cli.options); committed, and spec/cli_flags_spec.lua checks both are up to date.
.PHONY: man
man: build
	$(RUN_ENV) $(LUA) scripts/gen-man.lua > docs/polysim.1.tmp && mv docs/polysim.1.tmp docs/polysim.1
	$(RUN_ENV) $(LUA) scripts/gen-readme-help.lua

# The API reference from the doc comments (config.ld lists the files). LDoc reports some
# problems (an unknown reference, a missing formatter) without failing: any line it prints
# besides its two progress lines fails the target.
doc: deps
	@command -v ldoc >/dev/null 2>&1 || { echo "make doc needs LDoc: apt-get install lua-ldoc lua-discount"; exit 1; }
	@rm -rf $(BUILD)/doc && mkdir -p $(BUILD)/doc
	@ldoc --testing --fatalwarnings -d $(BUILD)/doc . > $(BUILD)/doc.log 2>&1; rc=$$?; \
	  if grep -v -e '^reading configuration from ' -e '^output written to ' $(BUILD)/doc.log || [ $$rc -ne 0 ]; then \
	    echo "make doc: LDoc warnings (above; log in $(BUILD)/doc.log)"; exit 1; fi
	@echo "API reference: $(BUILD)/doc/index.html"

print-%:
	@echo $($*)

clean:
	rm -rf $(BUILD) build-asan build-install build-fuzz build-cov
