/* Broken configurations, each with the one error it must produce, as
 * "file:line:col: message" (a prefix of the message when it is long).
 * Included by test_config.c only. The same cases live as files in
 * configs/bad/ with the expectation in a "# expect:" first line. */

struct cfg_bad_case {
	const char *name;
	const char *yaml;
	const char *expect;
};

static const struct cfg_bad_case cfg_bad_cases[] = {
	{ "bpf_attach_unknown",
	  "interfaces: [eth0]\n"
	  "bpf: { attach: dpdk }\n"
	  "services:\n"
	  "  - name: s1\n"
	  "    vip: 203.0.113.10\n"
	  "    servers:\n"
	  "      - { name: a, address: 198.51.100.1 }\n",
	  "t.yaml:2:16: bpf.attach: 'dpdk' is not one of: tc, xdp" },
	{ "ike_port_not_a_service_port",
	  "engine: socket\n"
	  "services:\n"
	  "  - name: s1\n"
	  "    vip: 127.0.0.1\n"
	  "    ports: [10500, 14500]\n"
	  "    ike_port: 500\n"
	  "    forwarding: fullnat\n"
	  "    servers:\n"
	  "      - { name: a, address: 127.0.0.2 }\n",
	  "t.yaml:6:15: services[0].ike_port: 500 is not one of the service's ports" },
	{ "unknown_key_top",
	  "interfaces: [eth0]\n"
	  "foo: 1\n"
	  "services:\n"
	  "  - name: s1\n"
	  "    vip: 203.0.113.10\n"
	  "    servers:\n"
	  "      - { name: a, address: 198.51.100.1 }\n",
	  "t.yaml:2:1: unknown key 'foo' (valid keys: engine, interfaces, api, bpf, maglev_seed, limits, server_state_file, services, sync, socket)" },
	{ "unknown_key_service",
	  "interfaces: [eth0]\n"
	  "services:\n"
	  "  - name: s1\n"
	  "    vip: 203.0.113.10\n"
	  "    vipp: 203.0.113.11\n"
	  "    servers:\n"
	  "      - { name: a, address: 198.51.100.1 }\n",
	  "t.yaml:5:5: services[0]: unknown key 'vipp' (valid keys: name, vip, ports, forwarding, persistence," },
	{ "unknown_key_server",
	  "interfaces: [eth0]\n"
	  "services:\n"
	  "  - name: s1\n"
	  "    vip: 203.0.113.10\n"
	  "    servers:\n"
	  "      - { name: a, address: 198.51.100.1, wieght: 5 }\n",
	  "t.yaml:6:43: services[0].servers[0]: unknown key 'wieght' (valid keys: name, address, weight, state," },
	{ "unknown_key_health",
	  "interfaces: [eth0]\n"
	  "services:\n"
	  "  - name: s1\n"
	  "    vip: 203.0.113.10\n"
	  "    health: { type: ike, intervall: 5s }\n"
	  "    servers:\n"
	  "      - { name: a, address: 198.51.100.1 }\n",
	  "t.yaml:5:26: services[0].health: unknown key 'intervall' (valid keys: type, interval, timeout, rise, fall," },
	{ "bad_vip",
	  "interfaces: [eth0]\n"
	  "services:\n"
	  "  - name: s1\n"
	  "    vip: 203.0.113.300\n"
	  "    servers:\n"
	  "      - { name: a, address: 198.51.100.1 }\n",
	  "t.yaml:4:10: services[0].vip: '203.0.113.300' is not an IPv4 or IPv6 address" },
	{ "bad_server_address",
	  "interfaces: [eth0]\n"
	  "services:\n"
	  "  - name: s1\n"
	  "    vip: 203.0.113.10\n"
	  "    servers:\n"
	  "      - { name: a, address: vpn1.example }\n",
	  "t.yaml:6:29: services[0].servers[0].address: 'vpn1.example' is not an IPv4 or IPv6 address" },
	{ "dup_vip_port",
	  "interfaces: [eth0]\n"
	  "services:\n"
	  "  - name: s1\n"
	  "    vip: 203.0.113.10\n"
	  "    ports: [500]\n"
	  "    servers:\n"
	  "      - { name: a, address: 198.51.100.1 }\n"
	  "  - name: s2\n"
	  "    vip: 203.0.113.10\n"
	  "    ports: [4500, 500]\n"
	  "    servers:\n"
	  "      - { name: a, address: 198.51.100.1 }\n",
	  "t.yaml:10:12: services[1].ports: 203.0.113.10:500 of service 's2' is already used by service 's1' (line 3)" },
	{ "port_zero",
	  "interfaces: [eth0]\n"
	  "services:\n"
	  "  - name: s1\n"
	  "    vip: 203.0.113.10\n"
	  "    ports: [0, 4500]\n"
	  "    servers:\n"
	  "      - { name: a, address: 198.51.100.1 }\n",
	  "t.yaml:5:13: services[0].ports[0]: 0 is out of range 1..65535" },
	{ "port_70000",
	  "interfaces: [eth0]\n"
	  "services:\n"
	  "  - name: s1\n"
	  "    vip: 203.0.113.10\n"
	  "    ports: [500, 70000]\n"
	  "    servers:\n"
	  "      - { name: a, address: 198.51.100.1 }\n",
	  "t.yaml:5:18: services[0].ports[1]: 70000 is out of range 1..65535" },
	{ "port_dup",
	  "interfaces: [eth0]\n"
	  "services:\n"
	  "  - name: s1\n"
	  "    vip: 203.0.113.10\n"
	  "    ports: [500, 4500, 500]\n"
	  "    servers:\n"
	  "      - { name: a, address: 198.51.100.1 }\n",
	  "t.yaml:5:24: services[0].ports[2]: port 500 is listed twice" },
	{ "weight_70000",
	  "interfaces: [eth0]\n"
	  "services:\n"
	  "  - name: s1\n"
	  "    vip: 203.0.113.10\n"
	  "    servers:\n"
	  "      - { name: a, address: 198.51.100.1, weight: 70000 }\n",
	  "t.yaml:6:51: services[0].servers[0].weight: 70000 is out of range 0..65535" },
	{ "weight_negative",
	  "interfaces: [eth0]\n"
	  "services:\n"
	  "  - name: s1\n"
	  "    vip: 203.0.113.10\n"
	  "    servers:\n"
	  "      - { name: a, address: 198.51.100.1, weight: -1 }\n",
	  "t.yaml:6:51: services[0].servers[0].weight: -1 is out of range 0..65535" },
	{ "weight_junk",
	  "interfaces: [eth0]\n"
	  "services:\n"
	  "  - name: s1\n"
	  "    vip: 203.0.113.10\n"
	  "    servers:\n"
	  "      - { name: a, address: 198.51.100.1, weight: heavy }\n",
	  "t.yaml:6:51: services[0].servers[0].weight: 'heavy' is not an integer" },
	{ "duration_parsecs",
	  "interfaces: [eth0]\n"
	  "services:\n"
	  "  - name: s1\n"
	  "    vip: 203.0.113.10\n"
	  "    persistence: { timeout: 10 parsecs }\n"
	  "    servers:\n"
	  "      - { name: a, address: 198.51.100.1 }\n",
	  "t.yaml:5:29: services[0].persistence.timeout: '10 parsecs' is not a duration (use e.g. 250ms, 90s, 5m, 1h, 1d)" },
	{ "duration_negative",
	  "interfaces: [eth0]\n"
	  "services:\n"
	  "  - name: s1\n"
	  "    vip: 203.0.113.10\n"
	  "    persistence: { flow_timeout: -5s }\n"
	  "    servers:\n"
	  "      - { name: a, address: 198.51.100.1 }\n",
	  "t.yaml:5:34: services[0].persistence.flow_timeout: '-5s' is not a duration (use e.g. 250ms, 90s, 5m, 1h, 1d)" },
	{ "persist_not_whole_seconds",
	  "interfaces: [eth0]\n"
	  "services:\n"
	  "  - name: s1\n"
	  "    vip: 203.0.113.10\n"
	  "    persistence: { timeout: 1500ms }\n"
	  "    servers:\n"
	  "      - { name: a, address: 198.51.100.1 }\n",
	  "t.yaml:5:29: services[0].persistence.timeout: must be a whole number of seconds" },
	{ "netmask_33",
	  "interfaces: [eth0]\n"
	  "services:\n"
	  "  - name: s1\n"
	  "    vip: 203.0.113.10\n"
	  "    persistence: { mode: source-ip, netmask: 33 }\n"
	  "    servers:\n"
	  "      - { name: a, address: 198.51.100.1 }\n",
	  "t.yaml:5:46: services[0].persistence.netmask: 33 is out of range 0..32" },
	{ "netmask6_129",
	  "interfaces: [eth0]\n"
	  "services:\n"
	  "  - name: s1\n"
	  "    vip: 203.0.113.10\n"
	  "    persistence: { netmask6: 129 }\n"
	  "    servers:\n"
	  "      - { name: a, address: 198.51.100.1 }\n",
	  "t.yaml:5:30: services[0].persistence.netmask6: 129 is out of range 0..128" },
	{ "persist_mode_unknown",
	  "interfaces: [eth0]\n"
	  "services:\n"
	  "  - name: s1\n"
	  "    vip: 203.0.113.10\n"
	  "    persistence: { mode: cookie }\n"
	  "    servers:\n"
	  "      - { name: a, address: 198.51.100.1 }\n",
	  "t.yaml:5:26: services[0].persistence.mode: 'cookie' is not one of: source-ip, ike" },
	{ "maglev_not_prime",
	  "interfaces: [eth0]\n"
	  "services:\n"
	  "  - name: s1\n"
	  "    vip: 203.0.113.10\n"
	  "    maglev_size: 65536\n"
	  "    servers:\n"
	  "      - { name: a, address: 198.51.100.1 }\n",
	  "t.yaml:5:18: services[0].maglev_size: 65536 is not prime (Maglev needs a prime table size; e.g. 65537," },
	{ "maglev_too_big",
	  "interfaces: [eth0]\n"
	  "services:\n"
	  "  - name: s1\n"
	  "    vip: 203.0.113.10\n"
	  "    maglev_size: 1000033\n"
	  "    servers:\n"
	  "      - { name: a, address: 198.51.100.1 }\n",
	  "t.yaml:5:18: services[0].maglev_size: 1000033 is out of range 101..1000003" },
	{ "maglev_too_small_for_servers",
	  "interfaces: [eth0]\n"
	  "services:\n"
	  "  - name: s1\n"
	  "    vip: 203.0.113.10\n"
	  "    maglev_size: 101\n"
	  "    servers:\n"
	  "      - { name: a, address: 198.51.100.1 }\n"
	  "      - { name: b, address: 198.51.100.2 }\n",
	  "t.yaml:5:18: services[0].maglev_size: 101 is too small for 2 servers: Maglev spreads clients evenly only with" },
	{ "vici_not_a_socket_uri",
	  "interfaces: [eth0]\n"
	  "services:\n"
	  "  - name: s1\n"
	  "    vip: 203.0.113.10\n"
	  "    servers:\n"
	  "      - { name: a, address: 198.51.100.1, vici: /run/charon.vici }\n",
	  "t.yaml:6:49: services[0].servers[0].vici: '/run/charon.vici' is not unix:///PATH or tcp://ADDR:PORT" },
	{ "spi_label_without_spi_mask",
	  "interfaces: [eth0]\n"
	  "services:\n"
	  "  - name: s1\n"
	  "    vip: 203.0.113.10\n"
	  "    spi_mask: 0\n"
	  "    servers:\n"
	  "      - { name: a, address: 198.51.100.1, spi_label: 1 }\n",
	  "t.yaml:7:54: services[0].servers[0].spi_label: needs a non-zero spi_mask on the service (it is 0)" },
	{ "spi_label_too_wide_default_mask",
	  "interfaces: [eth0]\n"
	  "services:\n"
	  "  - name: s1\n"
	  "    vip: 203.0.113.10\n"
	  "    servers:\n"
	  "      - { name: a, address: 198.51.100.1, spi_label: \"0x1234\" }\n",
	  "t.yaml:6:54: services[0].servers[0].spi_label: 0x1234 does not fit without spi_mask: a label is then one byte" },
	{ "spi_label_outside_mask",
	  "interfaces: [eth0]\n"
	  "services:\n"
	  "  - name: s1\n"
	  "    vip: 203.0.113.10\n"
	  "    spi_mask: \"0xff00000000000000\"\n"
	  "    servers:\n"
	  "      - { name: a, address: 198.51.100.1, spi_label: \"0x0100000000000001\" }\n",
	  "t.yaml:7:54: services[0].servers[0].spi_label: 0x0100000000000001 has bits outside spi_mask 0xff00000000000000" },
	{ "spi_label_zero",
	  "interfaces: [eth0]\n"
	  "services:\n"
	  "  - name: s1\n"
	  "    vip: 203.0.113.10\n"
	  "    servers:\n"
	  "      - { name: a, address: 198.51.100.1, spi_label: 0 }\n",
	  "t.yaml:6:54: services[0].servers[0].spi_label: must not be 0 (a zero label cannot be told apart from the zero" },
	{ "spi_label_dup",
	  "interfaces: [eth0]\n"
	  "services:\n"
	  "  - name: s1\n"
	  "    vip: 203.0.113.10\n"
	  "    servers:\n"
	  "      - { name: a, address: 198.51.100.1, spi_label: 1 }\n"
	  "      - { name: b, address: 198.51.100.2, spi_label: \"0x0100000000000000\" }\n",
	  "t.yaml:7:54: services[0].servers[1].spi_label: label 0x0100000000000000 is already used by server 'a'" },
	{ "spi_mask_junk",
	  "interfaces: [eth0]\n"
	  "services:\n"
	  "  - name: s1\n"
	  "    vip: 203.0.113.10\n"
	  "    spi_mask: \"0xfg\"\n"
	  "    servers:\n"
	  "      - { name: a, address: 198.51.100.1 }\n",
	  "t.yaml:5:15: services[0].spi_mask: '0xfg' is not an integer" },
	{ "esp_overlap",
	  "interfaces: [eth0]\n"
	  "services:\n"
	  "  - name: s1\n"
	  "    vip: 203.0.113.10\n"
	  "    servers:\n"
	  "      - { name: a, address: 198.51.100.1, esp_spi_min: 0xc0000000, esp_spi_max: 0xc0ffffff }\n"
	  "      - { name: b, address: 198.51.100.2, esp_spi_min: 0xc0ff0000, esp_spi_max: 0xc1ffffff }\n",
	  "t.yaml:7:56: services[0].servers[1]: ESP SPI range 0xc0ff0000..0xc1ffffff overlaps server 'a'" },
	{ "esp_only_min",
	  "interfaces: [eth0]\n"
	  "services:\n"
	  "  - name: s1\n"
	  "    vip: 203.0.113.10\n"
	  "    servers:\n"
	  "      - { name: a, address: 198.51.100.1, esp_spi_min: 4096 }\n",
	  "t.yaml:6:43: services[0].servers[0].esp_spi_min: give both esp_spi_min and esp_spi_max or neither" },
	{ "esp_min_above_max",
	  "interfaces: [eth0]\n"
	  "services:\n"
	  "  - name: s1\n"
	  "    vip: 203.0.113.10\n"
	  "    servers:\n"
	  "      - { name: a, address: 198.51.100.1, esp_spi_min: 8192, esp_spi_max: 4096 }\n",
	  "t.yaml:6:56: services[0].servers[0].esp_spi_min: 0x2000 is above esp_spi_max 0x1000" },
	{ "esp_min_below_256",
	  "interfaces: [eth0]\n"
	  "services:\n"
	  "  - name: s1\n"
	  "    vip: 203.0.113.10\n"
	  "    servers:\n"
	  "      - { name: a, address: 198.51.100.1, esp_spi_min: 255, esp_spi_max: 4096 }\n",
	  "t.yaml:6:56: services[0].servers[0].esp_spi_min: 255 is out of range 256..4294967295" },
	{ "fullnat_with_bpf",
	  "interfaces: [eth0]\n"
	  "services:\n"
	  "  - name: s1\n"
	  "    vip: 203.0.113.10\n"
	  "    forwarding: fullnat\n"
	  "    servers:\n"
	  "      - { name: a, address: 198.51.100.1 }\n",
	  "t.yaml:5:17: services[0].forwarding: fullnat needs engine: socket (the bpf engine rewrites packets in flight" },
	{ "dnat_with_socket",
	  "engine: socket\n"
	  "services:\n"
	  "  - name: s1\n"
	  "    vip: 203.0.113.10\n"
	  "    forwarding: dnat\n"
	  "    servers:\n"
	  "      - { name: a, address: 198.51.100.1 }\n",
	  "t.yaml:5:17: services[0].forwarding: dnat needs engine: bpf (the socket engine terminates UDP in user space" },
	{ "socket_default_forwarding",
	  "engine: socket\n"
	  "services:\n"
	  "  - name: s1\n"
	  "    vip: 203.0.113.10\n"
	  "    servers:\n"
	  "      - { name: a, address: 198.51.100.1 }\n",
	  "t.yaml:3:5: services[0].forwarding: defaults to dnat, which needs engine: bpf (the socket engine terminates" },
	{ "unknown_engine",
	  "engine: xdp\n"
	  "interfaces: [eth0]\n"
	  "services:\n"
	  "  - name: s1\n"
	  "    vip: 203.0.113.10\n"
	  "    servers:\n"
	  "      - { name: a, address: 198.51.100.1 }\n",
	  "t.yaml:1:9: engine: 'xdp' is not one of: bpf, socket" },
	{ "unknown_forwarding",
	  "interfaces: [eth0]\n"
	  "services:\n"
	  "  - name: s1\n"
	  "    vip: 203.0.113.10\n"
	  "    forwarding: nat\n"
	  "    servers:\n"
	  "      - { name: a, address: 198.51.100.1 }\n",
	  "t.yaml:5:17: services[0].forwarding: 'nat' is not one of: dnat, dsr, fullnat" },
	{ "unknown_scheduler",
	  "interfaces: [eth0]\n"
	  "services:\n"
	  "  - name: s1\n"
	  "    vip: 203.0.113.10\n"
	  "    scheduler: random\n"
	  "    servers:\n"
	  "      - { name: a, address: 198.51.100.1 }\n",
	  "t.yaml:5:16: services[0].scheduler: 'random' is not one of: maglev, rr, wrr, lc, wlc, sh, fo" },
	{ "unknown_state",
	  "interfaces: [eth0]\n"
	  "services:\n"
	  "  - name: s1\n"
	  "    vip: 203.0.113.10\n"
	  "    servers:\n"
	  "      - { name: a, address: 198.51.100.1, state: maintenance }\n",
	  "t.yaml:6:50: services[0].servers[0].state: 'maintenance' is not one of: active, draining, disabled" },
	{ "dup_server_names",
	  "interfaces: [eth0]\n"
	  "services:\n"
	  "  - name: s1\n"
	  "    vip: 203.0.113.10\n"
	  "    servers:\n"
	  "      - { name: a, address: 198.51.100.1 }\n"
	  "      - { name: a, address: 198.51.100.2 }\n",
	  "t.yaml:7:17: services[0].servers[1].name: server 'a' is already defined at line 6" },
	{ "dup_server_address",
	  "interfaces: [eth0]\n"
	  "services:\n"
	  "  - name: s1\n"
	  "    vip: 203.0.113.10\n"
	  "    servers:\n"
	  "      - { name: a, address: 198.51.100.1 }\n"
	  "      - { name: b, address: 198.51.100.1 }\n",
	  "t.yaml:7:29: services[0].servers[1].address: 198.51.100.1 is already used by server 'a'" },
	{ "server_family_mismatch",
	  "interfaces: [eth0]\n"
	  "services:\n"
	  "  - name: s1\n"
	  "    vip: 203.0.113.10\n"
	  "    servers:\n"
	  "      - { name: a, address: 2001:db8::1 }\n",
	  "t.yaml:6:29: services[0].servers[0].address: 2001:db8::1 is IPv6 but the service VIP is IPv4" },
	{ "server_is_vip",
	  "interfaces: [eth0]\n"
	  "services:\n"
	  "  - name: s1\n"
	  "    vip: 203.0.113.10\n"
	  "    servers:\n"
	  "      - { name: a, address: 203.0.113.10 }\n",
	  "t.yaml:6:29: services[0].servers[0].address: is the service VIP itself" },
	{ "health_timeout_ge_interval",
	  "interfaces: [eth0]\n"
	  "services:\n"
	  "  - name: s1\n"
	  "    vip: 203.0.113.10\n"
	  "    health: { interval: 2s, timeout: 2s }\n"
	  "    servers:\n"
	  "      - { name: a, address: 198.51.100.1 }\n",
	  "t.yaml:5:38: services[0].health.timeout: 2s must be shorter than the interval (2s), so one probe ends before" },
	{ "health_udp_without_send",
	  "interfaces: [eth0]\n"
	  "services:\n"
	  "  - name: s1\n"
	  "    vip: 203.0.113.10\n"
	  "    health: { type: udp, expect: \"0x01\" }\n"
	  "    servers:\n"
	  "      - { name: a, address: 198.51.100.1 }\n",
	  "t.yaml:5:13: services[0].health: type udp needs 'send' (the probe payload, as hex)" },
	{ "health_send_with_ike",
	  "interfaces: [eth0]\n"
	  "services:\n"
	  "  - name: s1\n"
	  "    vip: 203.0.113.10\n"
	  "    health: { type: ike, send: \"0x01\" }\n"
	  "    servers:\n"
	  "      - { name: a, address: 198.51.100.1 }\n",
	  "t.yaml:5:26: services[0].health.send: only used with type: udp" },
	{ "health_bad_hex",
	  "interfaces: [eth0]\n"
	  "services:\n"
	  "  - name: s1\n"
	  "    vip: 203.0.113.10\n"
	  "    health: { type: udp, send: \"0xzz\" }\n"
	  "    servers:\n"
	  "      - { name: a, address: 198.51.100.1 }\n",
	  "t.yaml:5:32: services[0].health.send: not a hex byte string of 1..1024 bytes (e.g. \"0x0102ff\")" },
	{ "health_rise_zero",
	  "interfaces: [eth0]\n"
	  "services:\n"
	  "  - name: s1\n"
	  "    vip: 203.0.113.10\n"
	  "    health: { rise: 0 }\n"
	  "    servers:\n"
	  "      - { name: a, address: 198.51.100.1 }\n",
	  "t.yaml:5:21: services[0].health.rise: 0 is out of range 1..100" },
	{ "yaml_syntax_error",
	  "interfaces: [eth0]\n"
	  "services:\n"
	  "  - name: s1\n"
	  "    vip: 203.0.113.10\n"
	  "    ports: [500, 4500\n"
	  "    servers:\n"
	  "      - { name: a, address: 198.51.100.1 }\n",
	  "t.yaml:6:12: YAML syntax error: did not find expected ',' or ']' (while parsing a flow sequence at line 5," },
	{ "yaml_bad_indent",
	  "interfaces: [eth0]\n"
	  "services:\n"
	  "  - name: s1\n"
	  "    vip: 203.0.113.10\n"
	  "   ports: [500]\n"
	  "    servers:\n"
	  "      - { name: a, address: 198.51.100.1 }\n",
	  "t.yaml:5:4: YAML syntax error: did not find expected '-' indicator (while parsing a block collection at line" },
	{ "empty_file",
	  "",
	  "t.yaml:1:1: configuration is empty (expected a mapping with at least 'services')" },
	{ "empty_services",
	  "interfaces: [eth0]\n"
	  "services: []\n",
	  "t.yaml:2:11: services: needs 1..32 entries, got 0" },
	{ "no_services",
	  "interfaces: [eth0]\n",
	  "t.yaml:1:1: missing required key 'services'" },
	{ "empty_servers",
	  "interfaces: [eth0]\n"
	  "services:\n"
	  "  - name: s1\n"
	  "    vip: 203.0.113.10\n"
	  "    servers: []\n",
	  "t.yaml:5:14: services[0].servers: needs 1..1024 entries, got 0" },
	{ "scalar_for_list",
	  "interfaces: [eth0]\n"
	  "services:\n"
	  "  - name: s1\n"
	  "    vip: 203.0.113.10\n"
	  "    ports: 500\n"
	  "    servers:\n"
	  "      - { name: a, address: 198.51.100.1 }\n",
	  "t.yaml:5:12: services[0].ports: expected a list, got a scalar" },
	{ "mapping_for_scalar",
	  "interfaces: [eth0]\n"
	  "services:\n"
	  "  - name: s1\n"
	  "    vip: { address: 203.0.113.10 }\n"
	  "    servers:\n"
	  "      - { name: a, address: 198.51.100.1 }\n",
	  "t.yaml:4:10: services[0].vip: expected a single value, got a mapping" },
	{ "list_for_mapping",
	  "interfaces: [eth0]\n"
	  "services:\n"
	  "  - name: s1\n"
	  "    vip: 203.0.113.10\n"
	  "    health: [ike]\n"
	  "    servers:\n"
	  "      - { name: a, address: 198.51.100.1 }\n",
	  "t.yaml:5:13: services[0].health: expected a mapping, got a list" },
	{ "top_level_list",
	  "- services\n",
	  "t.yaml:1:1: top level: expected a mapping, got a list" },
	{ "missing_vip",
	  "interfaces: [eth0]\n"
	  "services:\n"
	  "  - name: s1\n"
	  "    servers:\n"
	  "      - { name: a, address: 198.51.100.1 }\n",
	  "t.yaml:3:5: services[0]: missing required key 'vip'" },
	{ "missing_server_address",
	  "interfaces: [eth0]\n"
	  "services:\n"
	  "  - name: s1\n"
	  "    vip: 203.0.113.10\n"
	  "    servers:\n"
	  "      - { name: a }\n",
	  "t.yaml:6:9: services[0].servers[0]: missing required key 'address'" },
	{ "interfaces_required_for_bpf",
	  "services:\n"
	  "  - name: s1\n"
	  "    vip: 203.0.113.10\n"
	  "    servers:\n"
	  "      - { name: a, address: 198.51.100.1 }\n",
	  "t.yaml:1:1: interfaces: required with engine: bpf (the BPF program is attached to these interfaces)" },
	{ "interface_name_too_long",
	  "interfaces: [averyveryverylongname]\n"
	  "services:\n"
	  "  - name: s1\n"
	  "    vip: 203.0.113.10\n"
	  "    servers:\n"
	  "      - { name: a, address: 198.51.100.1 }\n",
	  "t.yaml:1:14: interfaces[0]: 'averyveryverylongname' is not a valid interface name (1..15 characters, no '/'," },
	{ "interface_twice",
	  "interfaces: [eth0, eth0]\n"
	  "services:\n"
	  "  - name: s1\n"
	  "    vip: 203.0.113.10\n"
	  "    servers:\n"
	  "      - { name: a, address: 198.51.100.1 }\n",
	  "t.yaml:1:20: interfaces[1]: interface 'eth0' is listed twice" },
	{ "service_bad_name",
	  "interfaces: [eth0]\n"
	  "services:\n"
	  "  - name: \"my service\"\n"
	  "    vip: 203.0.113.10\n"
	  "    servers:\n"
	  "      - { name: a, address: 198.51.100.1 }\n",
	  "t.yaml:3:11: services[0].name: 'my service' may contain only letters, digits, '_', '.' and '-'" },
	{ "dup_service_names",
	  "interfaces: [eth0]\n"
	  "services:\n"
	  "  - name: s1\n"
	  "    vip: 203.0.113.10\n"
	  "    servers:\n"
	  "      - { name: a, address: 198.51.100.1 }\n"
	  "  - name: s1\n"
	  "    vip: 203.0.113.11\n"
	  "    servers:\n"
	  "      - { name: a, address: 198.51.100.1 }\n",
	  "t.yaml:7:11: services[1].name: service 's1' is already defined at line 3" },
	{ "duplicate_key",
	  "interfaces: [eth0]\n"
	  "services:\n"
	  "  - name: s1\n"
	  "    vip: 203.0.113.10\n"
	  "    vip: 203.0.113.11\n"
	  "    servers:\n"
	  "      - { name: a, address: 198.51.100.1 }\n",
	  "t.yaml:5:5: services[0]: duplicate key 'vip' (first given at line 4)" },
	{ "snat_pool_without_fullnat",
	  "interfaces: [eth0]\n"
	  "services:\n"
	  "  - name: s1\n"
	  "    vip: 203.0.113.10\n"
	  "    snat_pool: [198.51.100.200]\n"
	  "    servers:\n"
	  "      - { name: a, address: 198.51.100.1 }\n",
	  "t.yaml:5:5: services[0].snat_pool: only used with forwarding: fullnat (dnat keeps the client's source address)" },
	{ "snat_pool_family",
	  "engine: socket\n"
	  "services:\n"
	  "  - name: s1\n"
	  "    vip: 203.0.113.10\n"
	  "    forwarding: fullnat\n"
	  "    snat_pool: [\"2001:db8::9\"]\n"
	  "    servers:\n"
	  "      - { name: a, address: 198.51.100.1 }\n",
	  "t.yaml:6:17: services[0].snat_pool[0]: address family differs from the service VIP" },
	{ "api_listen_bad",
	  "interfaces: [eth0]\n"
	  "api: { listen: \"tcp://127.0.0.1\" }\n"
	  "services:\n"
	  "  - name: s1\n"
	  "    vip: 203.0.113.10\n"
	  "    servers:\n"
	  "      - { name: a, address: 198.51.100.1 }\n",
	  "t.yaml:2:16: api.listen: 'tcp://127.0.0.1' is not \"unix:/absolute/path\" or \"host:port\" (IPv6 as \"[addr]:port\")" },
	{ "api_tcp_open_without_token",
	  "interfaces: [eth0]\n"
	  "api: { listen: \"0.0.0.0:8080\" }\n"
	  "services:\n"
	  "  - name: s1\n"
	  "    vip: 203.0.113.10\n"
	  "    servers:\n"
	  "      - { name: a, address: 198.51.100.1 }\n",
	  "t.yaml:2:16: api.listen: TCP listener 0.0.0.0:8080 is reachable from other hosts; set api.token_file (a bearer token) or listen on unix:/path or 127.0.0.1" },
	{ "api_token_file_relative",
	  "interfaces: [eth0]\n"
	  "api: { listen: \"0.0.0.0:8080\", token_file: api.token }\n"
	  "services:\n"
	  "  - name: s1\n"
	  "    vip: 203.0.113.10\n"
	  "    servers:\n"
	  "      - { name: a, address: 198.51.100.1 }\n",
	  "t.yaml:2:44: api.token_file: 'api.token' is not an absolute path" },
	{ "api_idle_timeout_range",
	  "interfaces: [eth0]\n"
	  "api: { idle_timeout: 500ms }\n"
	  "services:\n"
	  "  - name: s1\n"
	  "    vip: 203.0.113.10\n"
	  "    servers:\n"
	  "      - { name: a, address: 198.51.100.1 }\n",
	  "t.yaml:2:22: api.idle_timeout: 500ms is out of range 1s..1h" },
	{ "pin_dir_relative",
	  "interfaces: [eth0]\n"
	  "bpf: { pin_dir: ikelb }\n"
	  "services:\n"
	  "  - name: s1\n"
	  "    vip: 203.0.113.10\n"
	  "    servers:\n"
	  "      - { name: a, address: 198.51.100.1 }\n",
	  "t.yaml:2:17: bpf.pin_dir: 'ikelb' is not an absolute path" },
	{ "server_state_file_relative",
	  "interfaces: [eth0]\n"
	  "server_state_file: state.json\n"
	  "services:\n"
	  "  - name: s1\n"
	  "    vip: 203.0.113.10\n"
	  "    servers:\n"
	  "      - { name: a, address: 198.51.100.1 }\n",
	  "t.yaml:2:20: server_state_file: 'state.json' is not an absolute path (\"\" turns it off)" },
	{ "limits_zero",
	  "interfaces: [eth0]\n"
	  "limits: { max_flows: 0 }\n"
	  "services:\n"
	  "  - name: s1\n"
	  "    vip: 203.0.113.10\n"
	  "    servers:\n"
	  "      - { name: a, address: 198.51.100.1 }\n",
	  "t.yaml:2:22: limits.max_flows: 0 is out of range 16..268435456" },
	{ "socket_coalesce_range",
	  "engine: socket\n"
	  "socket: { workers: 2, coalesce_usecs: 1001 }\n"
	  "services:\n"
	  "  - name: s1\n"
	  "    vip: 127.0.0.1\n"
	  "    forwarding: fullnat\n"
	  "    servers:\n"
	  "      - { name: a, address: 127.0.0.2 }\n",
	  "t.yaml:2:39: socket.coalesce_usecs: 1001 is out of range 0..1000" },
	{ "socket_workers_range",
	  "engine: socket\n"
	  "socket: { workers: 65 }\n"
	  "services:\n"
	  "  - name: s1\n"
	  "    vip: 127.0.0.1\n"
	  "    forwarding: fullnat\n"
	  "    servers:\n"
	  "      - { name: a, address: 127.0.0.2 }\n",
	  "t.yaml:2:20: socket.workers: 65 is out of range 0..64" },
	{ "socket_unknown_key",
	  "engine: socket\n"
	  "socket: { batch: 64 }\n"
	  "services:\n"
	  "  - name: s1\n"
	  "    vip: 127.0.0.1\n"
	  "    forwarding: fullnat\n"
	  "    servers:\n"
	  "      - { name: a, address: 127.0.0.2 }\n",
	  "t.yaml:2:" },
	{ "deep_nesting",
	  "interfaces: [eth0]\n"
	  "services: [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\n",
	  "t.yaml:2:30: nesting deeper than 20 levels (the configuration needs 5)" },
	{ "empty_quoted_name",
	  "interfaces: [eth0]\n"
	  "services:\n"
	  "  - name: \"\"\n"
	  "    vip: 203.0.113.10\n"
	  "    servers:\n"
	  "      - { name: a, address: 198.51.100.1 }\n",
	  "t.yaml:3:11: services[0].name: missing value" },
	{ "health_bad_type_no_cascade",
	  "interfaces: [eth0]\n"
	  "services:\n"
	  "  - name: s1\n"
	  "    vip: 203.0.113.10\n"
	  "    health: { type: tcp, send: \"0x01\" }\n"
	  "    servers:\n"
	  "      - { name: a, address: 198.51.100.1 }\n",
	  "t.yaml:5:21: services[0].health.type: 'tcp' is not one of: ike, udp, none" },
	{ "second_document",
	  "interfaces: [eth0]\n"
	  "services:\n"
	  "  - name: s1\n"
	  "    vip: 203.0.113.10\n"
	  "    servers:\n"
	  "      - { name: a, address: 198.51.100.1 }\n"
	  "---\n"
	  "services: []\n",
	  "t.yaml:7:1: a second YAML document ('---') is not allowed; put everything in one" },
	{ "sync_listen_without_port",
	  "interfaces: [eth0]\n"
	  "services:\n"
	  "  - name: s1\n"
	  "    vip: 203.0.113.10\n"
	  "    servers:\n"
	  "      - { name: a, address: 198.51.100.1 }\n"
	  "sync: { listen: 198.51.100.2, peers: [\"198.51.100.3:7600\"], key_file: /k }\n",
	  "t.yaml:7:17: sync.listen: '198.51.100.2' is not \"address:port\"" },
	{ "sync_socket_engine",
	  "engine: socket\n"
	  "services:\n"
	  "  - name: s1\n"
	  "    vip: 127.0.0.1\n"
	  "    forwarding: fullnat\n"
	  "    servers:\n"
	  "      - { name: a, address: 127.0.0.2 }\n"
	  "sync: { listen: \"127.0.0.1:7600\", peers: [\"127.0.0.2:7600\"], key_file: /k }\n",
	  "t.yaml:8:7: sync: needs engine: bpf (the socket engine cannot share its state)" },
	{ "tcp_ports_socket_engine",
	  "engine: socket\n"
	  "services:\n"
	  "  - name: s1\n"
	  "    vip: 127.0.0.1\n"
	  "    forwarding: fullnat\n"
	  "    tcp_ports: [443]\n"
	  "    servers:\n"
	  "      - { name: a, address: 127.0.0.2 }\n",
	  "t.yaml:6:16: services[0].tcp_ports: needs engine: bpf (the socket engine relays UDP only" },
	{ "tcp_ports_listed_twice",
	  "interfaces: [eth0]\n"
	  "services:\n"
	  "  - name: s1\n"
	  "    vip: 203.0.113.10\n"
	  "    tcp_ports: [443, 443]\n"
	  "    servers:\n"
	  "      - { name: a, address: 198.51.100.1 }\n",
	  "t.yaml:5:22: services[0].tcp_ports[1]: port 443 is listed twice" },
	{ "tcp_ports_too_many",
	  "interfaces: [eth0]\n"
	  "services:\n"
	  "  - name: s1\n"
	  "    vip: 203.0.113.10\n"
	  "    tcp_ports: [1, 2, 3, 4, 5]\n"
	  "    servers:\n"
	  "      - { name: a, address: 198.51.100.1 }\n",
	  "t.yaml:5:16: services[0].tcp_ports: at most 4 ports, got 5" },
	{ "tcp_check_without_tcp_ports",
	  "interfaces: [eth0]\n"
	  "services:\n"
	  "  - name: s1\n"
	  "    vip: 203.0.113.10\n"
	  "    health: { type: ike, tcp_check: connect }\n"
	  "    servers:\n"
	  "      - { name: a, address: 198.51.100.1 }\n",
	  "t.yaml:5:37: services[0].health.tcp_check: only with tcp_ports" },
	{ "tcp_port_shared_by_two_services",
	  "interfaces: [eth0]\n"
	  "services:\n"
	  "  - name: s1\n"
	  "    vip: 203.0.113.10\n"
	  "    tcp_ports: [443]\n"
	  "    servers:\n"
	  "      - { name: a, address: 198.51.100.1 }\n"
	  "  - name: s2\n"
	  "    vip: 203.0.113.10\n"
	  "    ports: [1500]\n"
	  "    ike_port: 1500\n"
	  "    tcp_ports: [443]\n"
	  "    servers:\n"
	  "      - { name: b, address: 198.51.100.2 }\n",
	  "t.yaml:12:16: services[1].tcp_ports: TCP 203.0.113.10 port 443 of service 's2' is already used by service 's1' (line 3)" },
};
