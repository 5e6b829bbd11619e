# polysim: build, test, run, bench, install.  `make help` lists the targets.
LUA_VERSION     ?= 5.4
LUA             ?= lua$(LUA_VERSION)
LUA_INCLUDE_DIR ?= /usr/include/lua$(LUA_VERSION)
LUA_LIB         ?= -llua$(LUA_VERSION)
PREFIX          ?= /usr/local
LUA_SHARE_DIR   ?= $(PREFIX)/share/lua/$(LUA_VERSION)
LUA_LIB_DIR     ?= $(PREFIX)/lib/lua/$(LUA_VERSION)
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

PHONY_DASH := dashboard-shot
.PHONY: $(PHONY_DASH) rockspec all deps build test spec ctest check asan valgrind fuzz lint run bench install uninstall clean help
all: build

help:
	@echo "make run      build and run the default example strategy on the embedded exchange"
	@echo "make test     install missing packages, build, run every spec; ends with 'N passed, N failed, N skipped'"
	@echo "make serve    run the local exchange (polysim serve)"
	@echo "make bench    run the benchmarks in bench/"
	@echo "make check    test + lint + AddressSanitizer/UBSan run"
	@echo "make fuzz     libFuzzer run of the WebSocket frame parser (needs clang)"
	@echo "make install  install module, Lua files and the polysim command under PREFIX"

deps:
	@sh scripts/deps.sh

build: deps $(CORE_SO) $(EXE)

$(BUILD)/obj/%.o: src/%.c $(HEADERS) Makefile
	@mkdir -p $(dir $@)
	@echo "  CC $@"; $(CC) $(XCFLAGS) -DPOLYSIM_LUADIR='"$(POLYSIM_LUADIR)"' -c -o $@ $<

POLYSIM_LUADIR ?= $(CURDIR)/lua

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

# libFuzzer run of the WebSocket parser (needs clang): FUZZ_SECONDS (60) on a scratch copy
# of fuzz/corpus; findings go to build-fuzz/, never into the repository.
FUZZ_CC    ?= clang
FUZZ_FLAGS  = -std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer \
              -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
              -I$(LUA_INCLUDE_DIR) -Isrc
build-fuzz/ws_fuzz: fuzz/ws_fuzz.c src/ws.c src/sha1.c src/header.c src/ws.h src/internal.h
	@mkdir -p build-fuzz
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ fuzz/ws_fuzz.c src/ws.c src/sha1.c src/header.c $(LUA_LIB)

fuzz: build-fuzz/ws_fuzz
	rm -rf build-fuzz/corpus && mkdir -p build-fuzz/corpus && cp fuzz/corpus/* build-fuzz/corpus/
	build-fuzz/ws_fuzz -max_total_time=$${FUZZ_SECONDS:-60} -print_final_stats=1 \
	  -artifact_prefix=build-fuzz/ build-fuzz/corpus

install: build
	install -d $(DESTDIR)$(LUA_SHARE_DIR)/polysim/exchange $(DESTDIR)$(LUA_LIB_DIR)/polysim $(DESTDIR)$(PREFIX)/bin
	install -m 644 lua/polysim/*.lua $(DESTDIR)$(LUA_SHARE_DIR)/polysim/
	install -m 644 lua/polysim/exchange/*.lua $(DESTDIR)$(LUA_SHARE_DIR)/polysim/exchange/
	install -m 755 $(CORE_SO) $(DESTDIR)$(LUA_LIB_DIR)/polysim/core.so
	$(MAKE) BUILD=build-install POLYSIM_LUADIR=$(LUA_SHARE_DIR) build-install/bin/polysim
	install -m 755 build-install/bin/polysim $(DESTDIR)$(PREFIX)/bin/polysim

rockspec:
	$(LUA) scripts/gen-rockspec.lua > rockspec/polysim-scm-1.rockspec

print-%:
	@echo $($*)

clean:
	rm -rf $(BUILD) build-asan build-install build-fuzz
