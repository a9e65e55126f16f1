/* AF_UNIX SOCK_DGRAM and SOCK_SEQPACKET: boundaries, truncation, addresses. */
/* syscalls: socketpair socket bind connect sendto recvfrom recvmsg listen sendmmsg recvmmsg readv writev */
#include "common.h"
#include <sys/socket.h>
#include <sys/un.h>
#include <poll.h>

int main(void) {
    scratch();
    int sv[2];
    EXPECT_OK("dgram_socketpair", socketpair(AF_UNIX, SOCK_DGRAM, 0, sv));
    send(sv[0], "one", 3, 0);
    send(sv[0], "three", 5, 0);
    char buf[64];
    EXPECT_EQ("dgram_boundary_1", recv(sv[1], buf, sizeof buf, 0), 3);
    EXPECT_EQ("dgram_boundary_2", recv(sv[1], buf, sizeof buf, 0), 5);
    send(sv[0], "truncated", 9, 0);
    struct iovec iov = {buf, 4};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    EXPECT_EQ("dgram_truncate", recvmsg(sv[1], &mh, 0), 4);
    CHECK("dgram_msg_trunc_flag", mh.msg_flags & MSG_TRUNC);
    send(sv[0], "truncated", 9, 0);
    EXPECT_EQ("dgram_recv_trunc_real_len", recv(sv[1], buf, 2, MSG_TRUNC), 9);
    EXPECT_EQ("dgram_zero_length", (send(sv[0], "", 0, 0), recv(sv[1], buf, sizeof buf, 0)), 0);
    int srv = socket(AF_UNIX, SOCK_DGRAM, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    strcpy(a.sun_path, "dsock");
    EXPECT_OK("dgram_bind", bind(srv, (struct sockaddr *)&a, sizeof a));
    int cl = socket(AF_UNIX, SOCK_DGRAM, 0);
    struct sockaddr_un ca = {.sun_family = AF_UNIX};
    strcpy(ca.sun_path, "csock");
    bind(cl, (struct sockaddr *)&ca, sizeof ca);
    EXPECT_EQ("sendto", sendto(cl, "x", 1, 0, (struct sockaddr *)&a, sizeof a), 1);
    struct sockaddr_un from;
    socklen_t fl = sizeof from;
    EXPECT_EQ("recvfrom", recvfrom(srv, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl), 1);
    CHECK("recvfrom_address", !strcmp(from.sun_path, "csock"));
    int un = socket(AF_UNIX, SOCK_DGRAM, 0);
    EXPECT_ERR("send_unconnected_dgram", send(un, "x", 1, 0), ENOTCONN);
    struct sockaddr_un none = {.sun_family = AF_UNIX};
    strcpy(none.sun_path, "nosuch");
    EXPECT_ERR("sendto_missing", sendto(un, "x", 1, 0, (struct sockaddr *)&none, sizeof none), ENOENT);
    EXPECT_OK("dgram_connect", connect(un, (struct sockaddr *)&a, sizeof a));
    EXPECT_EQ("dgram_send_connected", send(un, "y", 1, 0), 1);
    int nb[2];
    socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0, nb);
    EXPECT_ERR("dgram_empty_eagain", recv(nb[0], buf, 1, 0), EAGAIN);
    char big[300000];
    memset(big, 0, sizeof big);
    EXPECT_ERR("dgram_too_big_emsgsize", send(nb[1], big, sizeof big, 0), EMSGSIZE);
    int sp[2];
    EXPECT_OK("seqpacket_socketpair", socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sp));
    send(sp[0], "abc", 3, 0);
    send(sp[0], "de", 2, 0);
    EXPECT_EQ("seqpacket_boundary", recv(sp[1], buf, sizeof buf, 0), 3);
    EXPECT_EQ("seqpacket_boundary_2", recv(sp[1], buf, sizeof buf, 0), 2);
    send(sp[0], "abcdef", 6, 0);
    EXPECT_EQ("seqpacket_truncate_discards", recv(sp[1], buf, 2, 0), 2);
    close(sp[0]);
    EXPECT_EQ("seqpacket_eof", recv(sp[1], buf, sizeof buf, 0), 0);
    int ls = socket(AF_UNIX, SOCK_SEQPACKET, 0);
    struct sockaddr_un la = {.sun_family = AF_UNIX};
    strcpy(la.sun_path, "ssock");
    bind(ls, (struct sockaddr *)&la, sizeof la);
    EXPECT_OK("seqpacket_listen", listen(ls, 1));
    int lc = socket(AF_UNIX, SOCK_SEQPACKET, 0);
    EXPECT_OK("seqpacket_connect", connect(lc, (struct sockaddr *)&la, sizeof la));
    EXPECT_ERR("dgram_listen_eopnotsupp", listen(srv, 1), EOPNOTSUPP);
    EXPECT_ERR("dgram_accept_eopnotsupp", accept(srv, NULL, NULL), EOPNOTSUPP);
    int third = socket(AF_UNIX, SOCK_DGRAM, 0);
    connect(cl, (struct sockaddr *)&a, sizeof a);
    EXPECT_ERR("dgram_send_to_connected_other_eperm", sendto(third, "x", 1, 0, (struct sockaddr *)&ca, sizeof ca), EPERM);
    int dp[2];
    socketpair(AF_UNIX, SOCK_DGRAM, 0, dp);
    char p1[3], p2[5];
    struct iovec wv[2] = {{"abc", 3}, {"defgh", 5}};
    EXPECT_EQ("writev_one_datagram", writev(dp[0], wv, 2), 8);
    struct iovec rv[2] = {{p1, 3}, {p2, 5}};
    EXPECT_EQ("readv_one_datagram", readv(dp[1], rv, 2), 8);
    CHECK("readv_scattered", !memcmp(p1, "abc", 3) && !memcmp(p2, "defgh", 5));
    send(dp[0], "peek", 4, 0);
    EXPECT_EQ("dgram_peek", recv(dp[1], buf, sizeof buf, MSG_PEEK), 4);
    EXPECT_EQ("dgram_after_peek", recv(dp[1], buf, sizeof buf, 0), 4);
    struct mmsghdr mm[3];
    struct iovec mv[3] = {{"m1", 2}, {"m22", 3}, {"m333", 4}};
    memset(mm, 0, sizeof mm);
    for (int i = 0; i < 3; i++) { mm[i].msg_hdr.msg_iov = &mv[i]; mm[i].msg_hdr.msg_iovlen = 1; }
    EXPECT_EQ("sendmmsg", sendmmsg(dp[0], mm, 3, 0), 3);
    char r0[8], r1[8], r2[8];
    struct iovec rmv[3] = {{r0, 8}, {r1, 8}, {r2, 8}};
    memset(mm, 0, sizeof mm);
    for (int i = 0; i < 3; i++) { mm[i].msg_hdr.msg_iov = &rmv[i]; mm[i].msg_hdr.msg_iovlen = 1; }
    EXPECT_EQ("recvmmsg", recvmmsg(dp[1], mm, 3, MSG_DONTWAIT, NULL), 3);
    CHECK("recvmmsg_lengths", mm[0].msg_len == 2 && mm[1].msg_len == 3 && mm[2].msg_len == 4);
    struct pollfd pf = {dp[1], POLLIN | POLLOUT, 0};
    CHECK("dgram_poll_writable", poll(&pf, 1, 0) == 1 && pf.revents == POLLOUT);
    send(dp[0], "r", 1, 0);
    CHECK("dgram_poll_readable", poll(&pf, 1, 0) == 1 && pf.revents == (POLLIN | POLLOUT));
    close(dp[1]);
    EXPECT_ERR("dgram_peer_closed_econnrefused", send(dp[0], "x", 1, 0), ECONNREFUSED);
    EXPECT_ERR("dgram_then_enotconn", send(dp[0], "x", 1, 0), ENOTCONN);
    struct sockaddr_un unspec = {.sun_family = AF_UNSPEC};
    EXPECT_OK("dgram_disconnect_unspec", connect(un, (struct sockaddr *)&unspec, sizeof unspec));
    EXPECT_ERR("dgram_disconnected_enotconn", send(un, "x", 1, 0), ENOTCONN);
    int sq[2];
    socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sq);
    close(sq[1]);
    EXPECT_ERR("seqpacket_peer_closed_epipe", send(sq[0], "x", 1, MSG_NOSIGNAL), EPIPE);
    int us = socket(AF_UNIX, SOCK_SEQPACKET, 0);
    EXPECT_ERR("seqpacket_unconnected_recv", recv(us, buf, 1, MSG_DONTWAIT), ENOTCONN);
    return DONE();
}
