/* The floor of the user-space path: the smallest NFQUEUE loop, built
 * against Debian's libnetfilter_queue. It gives every packet of queue 0
 * (or of the queue its first argument names)
 * the verdict phonehome gives an allowed connection's first packet: the
 * allow bits in the packet mark and NF_REPEAT, so phonehome's rules save
 * them into the ct mark and the connection's later packets stay in the
 * kernel, as with phonehome (an accept without the mark would leave each
 * connection's first 20 packets queued). One verdict per packet, copying
 * only 128 bytes of it (what a loop that reads headers needs).
 * bench/connections.rs compares phonehome with it.
 * Build: gcc -O2 -o nfq_accept nfq_accept.c -lnetfilter_queue */
#include <arpa/inet.h>
#include <linux/netfilter.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

static int allow_all(struct nfq_q_handle *qh, struct nfgenmsg *msg, struct nfq_data *nfa, void *data) {
    (void)msg;
    (void)data;
    struct nfqnl_msg_packet_hdr *ph = nfq_get_msg_packet_hdr(nfa);
    /* phonehome's verdict bits (src/firewall.rs): 0x30000000 is the mask,
     * 0x10000000 allow. */
    uint32_t mark = (nfq_get_nfmark(nfa) & ~0x30000000u) | 0x10000000u;
    return nfq_set_verdict2(qh, ph ? ntohl(ph->packet_id) : 0, NF_REPEAT, mark, 0, NULL);
}

int main(int argc, char **argv) {
    /* The queue number: 0 unless given (bench/queues.rs runs one per queue). */
    int queue = argc > 1 ? atoi(argv[1]) : 0;
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
