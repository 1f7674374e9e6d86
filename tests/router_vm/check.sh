#!/bin/sh
# The daemon on a router kernel of its own architecture (scripts/vm-router
# boots this in the guest, as its init's one job; busybox sh). The guest's
# root namespace is the router, between a phone and the wan in namespaces
# held by `unshare -n` (busybox `ip` has no netns), dual stack:
#
#   phone 192.168.77.2 fd77::2 (MAC 02:00:00:00:77:02)
#     -- lan0: router 192.168.77.1 fd77::1 / wan0: 203.0.113.1 2001:db8:113::1 --
#   wan 203.0.113.10 2001:db8:113::10: busybox httpd :80, dnsmasq :53
#       (tracking.miui.com -> .66/::66, www.google.com -> .77/::77)
#
# It installs `firewall up --backend nft` (the fw4-era path), runs the
# daemon with one rule (owner Xiaomi: block) and checks in line: HTTP with
# Host www.google.com answered and Host tracking.miui.com stopped, over
# IPv4 and IPv6; A and AAAA answers for the blocked name sinkholed to
# 0.0.0.0 / :: and the allowed name's passed; a connection to the address
# DNS named is judged by that name. It prints `status` and `flows --json`
# on lines starting with `@@phvm json`, which scripts/vm-router checks on
# the host (busybox has no JSON), and fails with `@@phvm FAIL: ...`.
set -u
fail() { echo "@@phvm FAIL: $*"; [ -f /tmp/daemon.log ] && sed 's/^/daemon: /' /tmp/daemon.log; exit 1; }
step() { echo "@@phvm $*"; }

unshare -n sleep 100000 & PHONE=$!
unshare -n sleep 100000 & WAN=$!
sleep 1
phone() { nsenter -t "$PHONE" -n "$@"; }
wan() { nsenter -t "$WAN" -n "$@"; }

# A veth pair NAME <-> eth0 in the namespace of PID; busybox `ip` ignores
# a peer name, so the kernel's veth%d peer is renamed after the fact.
veth() {
  before=" $(ls /sys/class/net | tr '\n' ' ') "
  ip link add name "$1" type veth || fail "ip link add $1"
  peer=""
  for i in $(ls /sys/class/net); do
    case "$before $1 " in *" $i "*) ;; *) peer=$i ;; esac
  done
  [ -n "$peer" ] || fail "no peer for $1"
  ip link set "$peer" netns "$2" || fail "ip link set $peer netns"
  nsenter -t "$2" -n ip link set "$peer" name eth0 || fail "rename $peer"
}
# No duplicate address detection: addresses usable at once.
for pid in $$ "$PHONE" "$WAN"; do
  nsenter -t "$pid" -n sh -c 'echo 0 > /proc/sys/net/ipv6/conf/default/accept_dad; echo 0 > /proc/sys/net/ipv6/conf/all/accept_dad; ip link set lo up'
done
veth lan0 "$PHONE"
veth wan0 "$WAN"
phone ip link set eth0 address 02:00:00:00:77:02
phone ip link set eth0 up
phone ip addr add 192.168.77.2/24 dev eth0
phone ip addr add fd77::2/64 dev eth0
phone ip route add default via 192.168.77.1
phone ip -6 route add default via fd77::1
wan ip link set eth0 up
for a in 10 66 77; do
  wan ip addr add 203.0.113.$a/24 dev eth0
  wan ip addr add 2001:db8:113::$a/64 dev eth0
done
wan ip route add default via 203.0.113.1
wan ip -6 route add default via 2001:db8:113::1
ip link set lan0 up
ip link set wan0 up
ip addr add 192.168.77.1/24 dev lan0
ip addr add fd77::1/64 dev lan0
ip addr add 203.0.113.1/24 dev wan0
ip addr add 2001:db8:113::1/64 dev wan0
echo 1 > /proc/sys/net/ipv4/ip_forward
echo 1 > /proc/sys/net/ipv6/conf/all/forwarding
phone ping -c 1 -W 5 203.0.113.10 >/dev/null || fail "no IPv4 route through the router"
phone ping6 -c 1 -W 5 2001:db8:113::10 >/dev/null || fail "no IPv6 route through the router"
step "network up"

mkdir -p /www && echo "hello from the wan" > /www/index.html
wan httpd -p 80 -h /www || fail "httpd"
wan dnsmasq --keep-in-foreground --no-resolv --no-hosts --user=root --group=root \
  --bind-interfaces --listen-address=203.0.113.10 --listen-address=2001:db8:113::10 \
  --address=/tracking.miui.com/203.0.113.66 --address=/tracking.miui.com/2001:db8:113::66 \
  --address=/www.google.com/203.0.113.77 --address=/www.google.com/2001:db8:113::77 \
  --pid-file=/run/dnsmasq.pid >/tmp/dnsmasq.log 2>&1 &

cat > /tmp/phonehome.conf <<'CONF'
config phonehome 'main'
	option socket '/run/phonehome.sock'
	option queue '0'

config rule 'xiaomi'
	list owner 'Xiaomi'
	option action 'block'
CONF
/phonehome firewall up --backend nft || fail "firewall up --backend nft"
/phonehome run -c /tmp/phonehome.conf >/tmp/daemon.log 2>&1 &
DAEMON=$!
i=0
until grep -q " verdicts)" /tmp/daemon.log 2>/dev/null; do
  i=$((i + 1)); [ $i -lt 300 ] || fail "the daemon did not bind its queue"
  kill -0 $DAEMON 2>/dev/null || fail "the daemon exited"
  sleep 0.1
done
grep -q "(conntrack verdicts)" /tmp/daemon.log || fail "not ct-mark verdicts: $(cat /tmp/daemon.log)"
step "daemon bound: $(grep -m1 'verdicts)' /tmp/daemon.log)"

# HTTP from the phone, named by its Host header only (no DNS before).
get() { # ADDRESS HOST -> the response's status line, or nothing
  printf 'GET / HTTP/1.0\r\nHost: %s\r\n\r\n' "$2" | phone timeout 8 nc -w 4 "$1" 80 2>/dev/null | head -n 1 | tr -d '\r'
}
for addr in 203.0.113.10 2001:db8:113::10; do
  got=$(get "$addr" www.google.com)
  case "$got" in "HTTP/1."*" 200 "*) ;; *) fail "Host www.google.com to $addr: '$got'" ;; esac
  got=$(get "$addr" tracking.miui.com)
  [ -z "$got" ] || fail "Host tracking.miui.com to $addr was answered: '$got'"
  step "Host: Google allowed, Xiaomi stopped, to $addr"
done

# DNS through the router: the blocked name's A and AAAA come back as
# 0.0.0.0 and ::, the allowed name's real addresses pass.
lookup() { # TYPE NAME SERVER -> the addresses nslookup printed
  phone nslookup -type="$1" "$2" "$3" 2>&1 | sed -n '/^Name:/,$ s/^Address: *//p'
}
for server in 203.0.113.10 2001:db8:113::10; do
  [ "$(lookup a tracking.miui.com $server)" = "0.0.0.0" ] \
    || fail "A tracking.miui.com via $server: $(phone nslookup -type=a tracking.miui.com $server 2>&1)"
  [ "$(lookup aaaa tracking.miui.com $server)" = "::" ] \
    || fail "AAAA tracking.miui.com via $server: $(phone nslookup -type=aaaa tracking.miui.com $server 2>&1)"
  [ "$(lookup a www.google.com $server)" = "203.0.113.77" ] \
    || fail "A www.google.com via $server: $(phone nslookup -type=a www.google.com $server 2>&1)"
  [ "$(lookup aaaa www.google.com $server)" = "2001:db8:113::77" ] \
    || fail "AAAA www.google.com via $server: $(phone nslookup -type=aaaa www.google.com $server 2>&1)"
  step "DNS via $server: tracking.miui.com sinkholed, www.google.com passed"
done
# The address the answer named, by a request that names nothing itself
# (HTTP/1.0 without Host): the DNS name decides and names it (Google,
# allowed; a connection that sends its own name is named by that). The
# blocked name's real address, used anyway (a hard-coded fallback), is
# stopped at its SYN by its learned name, whatever Host would follow.
get_nameless() { # ADDRESS -> the response's status line, or nothing
  printf 'GET / HTTP/1.0\r\n\r\n' | phone timeout 8 nc -w 4 "$1" 80 2>/dev/null | head -n 1 | tr -d '\r'
}
for addr in 203.0.113.77 2001:db8:113::77; do
  got=$(get_nameless "$addr")
  case "$got" in "HTTP/1."*" 200 "*) ;; *) fail "to $addr (www.google.com by DNS): '$got'" ;; esac
done
for addr in 203.0.113.66 2001:db8:113::66; do
  got=$(get "$addr" nameless.invalid)
  [ -z "$got" ] || fail "to $addr (tracking.miui.com by DNS) was answered: '$got'"
done
step "DNS-named connections judged by their names"

status=$(/phonehome --socket /run/phonehome.sock status --json) || fail "status"
echo "@@phvm json status $(echo "$status" | tr -d '\n')"
flows=$(/phonehome --socket /run/phonehome.sock flows --json) || fail "flows --json"
echo "@@phvm json flows $(echo "$flows" | tr -d '\n')"
kill $DAEMON
wait $DAEMON 2>/dev/null
/phonehome firewall down --backend nft || fail "firewall down"
step "done"
