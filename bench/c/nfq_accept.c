/* The floor of the user-space path: the smallest NFQUEUE loop, built
 * against Debian's libnetfilter_queue. It gives every packet of queue 0
 * (or of the queue its first argument names)
 * the verdict phonehome gives an allowed connection: the allow bits in
 * the packet mark and NF_REPEAT, so phonehome's rules save them into the
 * ct mark and the connection's later packets stay in the kernel, as with
 * phonehome (an accept without the mark would leave each connection's
 * first 20 packets queued). One verdict per packet, copying only 128
 * bytes of it (what a loop that reads headers needs).
 * With a second argument `until-data` it waits as phonehome waits for a
 * connection's own name: a TCP packet with neither data nor FIN/RST (the
 * handshake) is accepted unmarked, so it queues what phonehome queues for
 * a connection whose DNS name does not decide it.
 * bench/connections.rs compares phonehome with it.
 * Build: gcc -O2 -o nfq_accept nfq_accept.c -lnetfilter_queue */
#include <arpa/inet.h>
#include <linux/netfilter.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static int until_data;

/* Whether a packet is a TCP segment with no data, FIN or RST. */
static int bare_tcp(struct nfq_data *nfa) {
    unsigned char *p;
    int len = nfq_get_payload(nfa, &p);
    int ip_len, proto, total;
    if (len < 20) return 0;
    if (p[0] >> 4 == 4) {
        ip_len = (p[0] & 0x0f) * 4;
        proto = p[9];
        total = (p[2] << 8) | p[3];
    } else if (p[0] >> 4 == 6 && len >= 40) {
        ip_len = 40;
        proto = p[6];
        total = 40 + ((p[4] << 8) | p[5]);
    } else {
        return 0;
    }
    if (proto != 6 || len < ip_len + 20) return 0;
    unsigned char *tcp = p + ip_len;
    int tcp_len = (tcp[12] >> 4) * 4;
    int fin_rst = tcp[13] & 0x05;
    return !fin_rst && total - ip_len - tcp_len <= 0;
}

static int allow_all(struct nfq_q_handle *qh, struct nfgenmsg *msg, struct nfq_data *nfa, void *data) {
    (void)msg;
    (void)data;
    struct nfqnl_msg_packet_hdr *ph = nfq_get_msg_packet_hdr(nfa);
    if (until_data && bare_tcp(nfa))
        return nfq_set_verdict(qh, ph ? ntohl(ph->packet_id) : 0, NF_ACCEPT, 0, NULL);
    /* phonehome's verdict bits (src/policy/firewall.rs): 0x30000000 is the mask,
     * 0x10000000 allow. */
    uint32_t mark = (nfq_get_nfmark(nfa) & ~0x30000000u) | 0x10000000u;
    return nfq_set_verdict2(qh, ph ? ntohl(ph->packet_id) : 0, NF_REPEAT, mark, 0, NULL);
}

int main(int argc, char **argv) {
    /* The queue number: 0 unless given (bench/queues.rs runs one per queue). */
    int queue = argc > 1 ? atoi(argv[1]) : 0;
    until_data = argc > 2 && strcmp(argv[2], "until-data") == 0;
    struct nfq_handle *h = nfq_open();
    if (!h) { perror("nfq_open"); return 1; }
    struct nfq_q_handle *qh = nfq_create_queue(h, queue, &allow_all, NULL);
    if (!qh) { perror("nfq_create_queue"); return 1; }
    if (nfq_set_mode(qh, NFQNL_COPY_PACKET, 128) < 0) { perror("nfq_set_mode"); return 1; }
    nfq_set_queue_maxlen(qh, 4096);
    int fd = nfq_fd(h);
    char buf[65536] __attribute__((aligned));
    fprintf(stderr, "nfq_accept: bound to queue %d\n", queue);
    for (;;) {
        int n = recv(fd, buf, sizeof buf, 0);
        if (n < 0) continue;
        nfq_handle_packet(h, buf, n);
    }
}
