/* The floor of the user-space path: the smallest NFQUEUE loop, built
 * against Debian's libnetfilter_queue. It accepts every packet of queue 0
 * with one verdict each, copying only 128 bytes of it (what a loop that
 * reads headers needs). bench/connections.rs compares phonehome with it.
 * Build: gcc -O2 -o nfq_accept nfq_accept.c -lnetfilter_queue */
#include <arpa/inet.h>
#include <linux/netfilter.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

static int accept_all(struct nfq_q_handle *qh, struct nfgenmsg *msg, struct nfq_data *nfa, void *data) {
    (void)msg;
    (void)data;
    struct nfqnl_msg_packet_hdr *ph = nfq_get_msg_packet_hdr(nfa);
    return nfq_set_verdict(qh, ph ? ntohl(ph->packet_id) : 0, NF_ACCEPT, 0, NULL);
}

int main(void) {
    struct nfq_handle *h = nfq_open();
    if (!h) { perror("nfq_open"); return 1; }
    struct nfq_q_handle *qh = nfq_create_queue(h, 0, &accept_all, NULL);
    if (!qh) { perror("nfq_create_queue"); return 1; }
    if (nfq_set_mode(qh, NFQNL_COPY_PACKET, 128) < 0) { perror("nfq_set_mode"); return 1; }
    nfq_set_queue_maxlen(qh, 4096);
    int fd = nfq_fd(h);
    char buf[65536] __attribute__((aligned));
    fprintf(stderr, "nfq_accept: bound to queue 0\n");
    for (;;) {
        int n = recv(fd, buf, sizeof buf, 0);
        if (n < 0) continue;
        nfq_handle_packet(h, buf, n);
    }
}
