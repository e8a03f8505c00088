# ikelb build. `make check` installs dependencies, builds, and runs every
# test in a normal and a sanitizer (ASan+UBSan) build; `make demo` runs the
# built-in lab. See README.md.

SAN ?= 0
ifeq ($(SAN),1)
BUILD ?= build-san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else
BUILD ?= build
SANFLAGS :=
endif

CC ?= gcc
CLANG ?= clang
BPFTOOL ?= bpftool
PYTHON ?= /usr/bin/python3
FUZZ_SECONDS ?= 60
CHECK_FUZZ_SECONDS ?= 15
PREFIX ?= /usr/local
# Where `make install` puts the unit; the Debian package passes systemd's
# own (pkg-config systemd --variable=systemdsystemunitdir).
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system

ARCH_INC := /usr/include/$(shell uname -m)-linux-gnu
CFLAGS := -std=gnu11 -Wall -Wextra -Werror -O2 -g -D_GNU_SOURCE \
	-Iinclude -Isrc -I$(BUILD) $(SANFLAGS) $(EXTRA_CFLAGS)
LDFLAGS := $(SANFLAGS) $(EXTRA_LDFLAGS)
# The daemon (ikelbd) and the CLI (ikelb) link only what they use: libcurl
# and its ~20 dependencies stay out of the daemon, libbpf out of the CLI.
LIBS := -lbpf -lelf -lz -lyaml -ljansson -lmicrohttpd -lpcap -lm -lpthread
# libsystemd (sd_notify) and libcap-ng (ctl/caps.c) are the daemon's alone.
DAEMON_LIBS := $(LIBS) -lsystemd -lcap-ng -lcrypto
CLI_LIBS := -lyaml -ljansson -lcurl -lpcap
BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_x86 -Wall -Werror \
	-Iinclude -Isrc -I$(ARCH_INC)

LIB_SRCS := $(wildcard src/core/*.c src/engine/*.c src/ctl/*.c src/doctor/*.c) src/cli/args.c \
	src/cli/config_cmd.c
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/%.o)
CLI_OBJS := $(BUILD)/src/cli/main.o $(BUILD)/src/cli/client.o $(BUILD)/src/cli/client_lookup.o
BPF_SRCS := $(wildcard src/bpf/*.bpf.c)
BPF_OBJS := $(BPF_SRCS:src/bpf/%.bpf.c=$(BUILD)/bpf/%.bpf.o)
BPF_SKELS := $(BPF_SRCS:src/bpf/%.bpf.c=$(BUILD)/bpf/%.skel.h)
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:%.c=$(BUILD)/%)
BPFT_SRCS := $(wildcard tests/bpf/test_*.c)
BPFT_BINS := $(BPFT_SRCS:%.c=$(BUILD)/%)
TEST_HELPERS := $(wildcard tests/unit/helpers/*.c)
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
BENCH_SRCS := $(wildcard bench/*.c)
BENCH_BINS := $(BENCH_SRCS:bench/%.c=$(BUILD)/bench/%)
DEPS_STAMP := $(BUILD)/.deps-ok

.PHONY: all deps check check-unit check-bpf check-doctor check-pkg check-system check-san check-system-san fuzz \
	demo demo-ha bench install deb clean tests

all: $(BUILD)/ikelbd $(BUILD)/ikelb $(BENCH_BINS)

deps: $(DEPS_STAMP)
$(DEPS_STAMP): scripts/install-deps
	@mkdir -p $(BUILD)
	sh scripts/install-deps
	@touch $@

$(BUILD)/bpf/%.bpf.o: src/bpf/%.bpf.c $(wildcard src/bpf/*.h include/ikelb/*.h) | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(BUILD)/bpf/%.skel.h: $(BUILD)/bpf/%.bpf.o
	$(BPFTOOL) gen skeleton $< > $@.tmp && mv $@.tmp $@

# Only code that embeds a BPF skeleton waits for the BPF build.
ENGINE_OBJS := $(filter $(BUILD)/src/engine/%,$(LIB_OBJS))
$(ENGINE_OBJS): $(BPF_SKELS)

# The dashboard's files, compiled into the daemon (src/ctl/dashboard.c).
DASH_FILES := contrib/dashboard/index.html contrib/dashboard/dashboard.js contrib/dashboard/dashboard.css
$(BUILD)/ctl/dashboard_assets.h: $(DASH_FILES) scripts/embed
	@mkdir -p $(dir $@)
	sh scripts/embed $@ dash_index=contrib/dashboard/index.html \
		dash_js=contrib/dashboard/dashboard.js dash_css=contrib/dashboard/dashboard.css
$(BUILD)/src/ctl/dashboard.o: $(BUILD)/ctl/dashboard_assets.h

$(BUILD)/%.o: %.c | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libikelb.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/ikelbd: $(BUILD)/src/main.o $(BUILD)/libikelb.a
	$(CC) $(LDFLAGS) -o $@ $^ $(DAEMON_LIBS)

$(BUILD)/ikelb: $(CLI_OBJS) $(BUILD)/libikelb.a
	$(CC) $(LDFLAGS) -o $@ $^ $(CLI_LIBS)

$(BUILD)/tests/unit/%: tests/unit/%.c $(BUILD)/libikelb.a $(TEST_HELPERS) | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit -o $@ $< $(TEST_HELPERS) $(BUILD)/libikelb.a $(LIBS) -lcmocka $(UNIT_EXTRA_LIBS) $(LDFLAGS)

# The sync wire test checks real HMAC-SHA256 (the daemon's OpenSSL helper).
$(BUILD)/tests/unit/test_sync_wire: UNIT_EXTRA_LIBS := -lcrypto

$(BUILD)/tests/bpf/%: tests/bpf/%.c $(BUILD)/libikelb.a $(BPF_SKELS) $(TEST_HELPERS) | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit -Itests/bpf -o $@ $< $(TEST_HELPERS) $(BUILD)/libikelb.a $(LIBS) -lcmocka $(LDFLAGS)

# The kernel path micro-benchmark runs on the BPF tests' fixture.
BENCH_BPF_BINS = $(BUILD)/bench/bpf_fwd_micro
$(BENCH_BPF_BINS): $(BUILD)/bench/%: bench/%.c $(BUILD)/libikelb.a $(BPF_SKELS) $(TEST_HELPERS) | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit -Itests/bpf -o $@ $< $(TEST_HELPERS) $(BUILD)/libikelb.a $(LIBS) -lcmocka $(LDFLAGS)

$(BUILD)/bench/%: bench/%.c $(BUILD)/libikelb.a | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libikelb.a $(LIBS) $(LDFLAGS)

tests: $(UNIT_BINS) $(BPFT_BINS)

check-unit: all $(UNIT_BINS)
	sh scripts/run-tests unit $(UNIT_BINS)

check-bpf: all $(BPFT_BINS)
	sh scripts/run-tests bpf $(BPFT_BINS)

# `ikelb doctor` on the lab's captures (tests/doctor/captures); no root.
check-doctor: all
	IKELB_BIN=$(abspath $(BUILD)/ikelb) $(PYTHON) -m pytest -q -p no:cacheprovider tests/doctor

# Builds the .deb and checks what it installs (tests/pkg/run).
check-pkg: deb
	PYTHON=$(PYTHON) sh tests/pkg/run $(DEB_DIR)

check-system: all
	IKELB_NO_SKIP=1 IKELB_BIN=$(abspath $(BUILD)/ikelb) IKELB_BUILD=$(abspath $(BUILD)) \
		$(PYTHON) -m pytest -q -p no:cacheprovider tests/system

check-san:
	$(MAKE) SAN=1 BUILD=$(BUILD)-san check-unit check-bpf

# The daemon itself under ASan+UBSan against real peers (a subset: the
# API, the bpf and socket engines' main paths).
SAN_SYSTEM_TESTS ?= test_api.py test_bpf_dnat.py test_socket_fullnat.py::test_socket_fullnat_clients_and_nat_clients_up
check-system-san:
	$(MAKE) SAN=1 BUILD=$(BUILD)-san all
	cd tests/system && IKELB_NO_SKIP=1 IKELB_BIN=$(abspath $(BUILD)-san/ikelb) IKELB_BUILD=$(abspath $(BUILD)-san) \
		ASAN_OPTIONS=detect_leaks=1 $(PYTHON) -m pytest -q -p no:cacheprovider $(SAN_SYSTEM_TESTS)

# The full suite: normal build (unit, BPF), the sanitizer build (unit,
# BPF), a short fuzzing run, then the real-strongSwan system tests.
check: deps
	sh scripts/check-layout
	$(MAKE) check-unit check-bpf
	$(MAKE) check-doctor
	$(MAKE) check-pkg
	$(MAKE) check-san
	$(MAKE) fuzz FUZZ_SECONDS=$(CHECK_FUZZ_SECONDS)
	$(MAKE) check-system
	$(MAKE) check-system-san

fuzz: | $(DEPS_STAMP)
	@mkdir -p $(BUILD)/fuzz
	@set -e; for f in $(FUZZ_SRCS); do \
		n=$$(basename $$f .c); \
		$(CLANG) -std=gnu11 -g -O1 -Iinclude -Isrc -fsanitize=fuzzer,address,undefined \
			-o $(BUILD)/fuzz/$$n $$f; \
		mkdir -p $(BUILD)/fuzz/$$n.corpus; \
		echo "fuzz: $$n for $(FUZZ_SECONDS)s"; \
		rc=0; $(BUILD)/fuzz/$$n -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
			$(BUILD)/fuzz/$$n.corpus tests/fuzz/corpus/$$n > $(BUILD)/fuzz/$$n.log 2>&1 || rc=$$?; \
		grep -E '^(Done|stat::|==[0-9]+==ERROR|SUMMARY)|cov:' $(BUILD)/fuzz/$$n.log | tail -n 14; \
		if [ $$rc -ne 0 ]; then echo "fuzz: $$n FAILED (see $(BUILD)/fuzz/$$n.log)"; exit 1; fi; \
	done

demo: all
	sh scripts/demo

demo-ha: all
	sh scripts/demo-ha

bench: all
	IKELB_BENCH_DEPS=1 sh scripts/install-deps
	IKELB_BUILD=$(abspath $(BUILD)) sh bench/run

# The sample configuration is installed only where there is none yet.
install: all
	install -D -m 0755 $(BUILD)/ikelb $(DESTDIR)$(PREFIX)/sbin/ikelb
	install -D -m 0755 $(BUILD)/ikelbd $(DESTDIR)$(PREFIX)/sbin/ikelbd
	install -D -m 0644 docs/ikelb.8 $(DESTDIR)$(PREFIX)/share/man/man8/ikelb.8
	install -D -m 0644 docs/ikelbd.8 $(DESTDIR)$(PREFIX)/share/man/man8/ikelbd.8
	install -D -m 0644 docs/ikelb.yaml.5 $(DESTDIR)$(PREFIX)/share/man/man5/ikelb.yaml.5
	install -D -m 0644 contrib/systemd/ikelb.service $(DESTDIR)$(SYSTEMDUNITDIR)/ikelb.service
	install -D -m 0644 contrib/sysctl/60-ikelb.conf $(DESTDIR)$(PREFIX)/lib/sysctl.d/60-ikelb.conf
	install -D -m 0644 contrib/bash-completion/ikelb $(DESTDIR)$(PREFIX)/share/bash-completion/completions/ikelb
	test -e $(DESTDIR)/etc/ikelb/ikelb.yaml || install -D -m 0644 contrib/ikelb.yaml $(DESTDIR)/etc/ikelb/ikelb.yaml

# The Debian package (debian/), built from a copy of the tree in
# $(DEB_DIR)/src so that dpkg-buildpackage leaves this tree and the
# directory above it alone: ikelb_*.deb and friends end up in $(DEB_DIR).
DEB_DIR ?= $(BUILD)/deb
deb: | $(DEPS_STAMP)
	rm -rf $(DEB_DIR) && mkdir -p $(DEB_DIR)/src
	tar -cf - --exclude-vcs --exclude=./build --exclude='./build-*' --exclude=__pycache__ . | \
		tar -xf - -C $(DEB_DIR)/src
	cd $(DEB_DIR)/src && dpkg-buildpackage -us -uc -b
	rm -rf $(DEB_DIR)/src
	@ls -l $(DEB_DIR)/*.deb

clean:
	rm -rf build build-san

-include $(LIB_OBJS:.o=.d) $(CLI_OBJS:.o=.d) $(BUILD)/src/main.d
