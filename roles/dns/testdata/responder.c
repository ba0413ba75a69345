/* responder: a bare UDP DNS responder for BenchmarkPeers. Blocking
   recvmmsg/sendmmsg on one SO_REUSEPORT socket per thread. With ttl < 0 it
   echoes each query back with QR set (the kernel's floor for one query and
   reply); with ttl >= 0 it answers the question with one A record of that
   TTL (a fake upstream). Usage: responder ADDR PORT THREADS TTL */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define BATCH 64
#define BUF 4096

static struct sockaddr_in addr;
static long ttl;

static int answer(unsigned char *b, int n) {
	int off = 12;
	if (n < 12) return -1;
	b[2] |= 0x80;
	if (ttl < 0) return n;
	while (off < n && b[off] != 0) off += 1 + b[off];
	off += 5;
	if (off > n || off + 16 > BUF) return -1;
	b[3] = 0x80; /* RA, NOERROR */
	b[6] = 0; b[7] = 1; b[8] = b[9] = b[10] = b[11] = 0;
	unsigned char rr[16] = {0xc0, 12, 0, 1, 0, 1, ttl >> 24, ttl >> 16, ttl >> 8, ttl, 0, 4, 93, 184, 216, 34};
	memcpy(b + off, rr, 16);
	return off + 16;
}

static void *serve(void *arg) {
	static __thread unsigned char bufs[BATCH][BUF];
	struct mmsghdr in[BATCH], out[BATCH];
	struct iovec iov[BATCH], oiov[BATCH];
	struct sockaddr_in from[BATCH];
	int one = 1, fd = socket(AF_INET, SOCK_DGRAM, 0);
	(void)arg;
	setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
	if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0) { perror("bind"); exit(1); }
	for (;;) {
		for (int i = 0; i < BATCH; i++) {
			iov[i] = (struct iovec){bufs[i], BUF};
			in[i].msg_hdr = (struct msghdr){.msg_name = &from[i], .msg_namelen = sizeof from[i], .msg_iov = &iov[i], .msg_iovlen = 1};
		}
		int n = recvmmsg(fd, in, BATCH, MSG_WAITFORONE, NULL), k = 0;
		for (int i = 0; i < n; i++) {
			int len = answer(bufs[i], in[i].msg_len);
			if (len < 0) continue;
			oiov[k] = (struct iovec){bufs[i], len};
			out[k].msg_hdr = (struct msghdr){.msg_name = &from[i], .msg_namelen = in[i].msg_hdr.msg_namelen, .msg_iov = &oiov[k], .msg_iovlen = 1};
			k++;
		}
		for (int s = 0; s < k;) {
			int m = sendmmsg(fd, out + s, k - s, 0);
			s += m > 0 ? m : 1;
		}
	}
	return NULL;
}

int main(int argc, char **argv) {
	if (argc != 5) { fprintf(stderr, "usage: responder ADDR PORT THREADS TTL\n"); return 2; }
	addr.sin_family = AF_INET;
	addr.sin_port = htons(atoi(argv[2]));
	if (inet_pton(AF_INET, argv[1], &addr.sin_addr) != 1) { fprintf(stderr, "bad address %s\n", argv[1]); return 2; }
	int threads = atoi(argv[3]);
	ttl = atol(argv[4]);
	pthread_t t;
	for (int i = 1; i < threads; i++) pthread_create(&t, NULL, serve, NULL);
	serve(NULL);
}
