/* AF_UNIX SOCK_STREAM: socketpair, bind/listen/connect/accept, shutdown. */
/* syscalls: socketpair socket bind listen connect accept accept4 shutdown getsockname getpeername getsockopt sendto recvfrom */
#include "common.h"
#include <sys/socket.h>
#include <sys/un.h>
#include <poll.h>

int main(void) {
    scratch();
    int sv[2];
    EXPECT_OK("socketpair", socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
    char buf[64];
    EXPECT_EQ("socketpair_write", write(sv[0], "ping", 4), 4);
    EXPECT_EQ("socketpair_read", read(sv[1], buf, sizeof buf), 4);
    EXPECT_EQ("send", send(sv[1], "pong", 4, 0), 4);
    EXPECT_EQ("recv_peek", recv(sv[0], buf, 4, MSG_PEEK), 4);
    EXPECT_EQ("recv_after_peek", recv(sv[0], buf, 4, 0), 4);
    EXPECT_ERR("recv_dontwait_eagain", recv(sv[0], buf, 4, MSG_DONTWAIT), EAGAIN);
    EXPECT_OK("shutdown_wr", shutdown(sv[0], SHUT_WR));
    EXPECT_EQ("read_eof_after_shutdown", read(sv[1], buf, 4), 0);
    signal(SIGPIPE, SIG_IGN);
    EXPECT_ERR("write_after_shutdown_epipe", write(sv[0], "x", 1), EPIPE);
    EXPECT_ERR("send_nosignal_epipe", send(sv[0], "x", 1, MSG_NOSIGNAL), EPIPE);
    EXPECT_ERR("shutdown_bad_how", shutdown(sv[1], 7), EINVAL);
    EXPECT_ERR("socketpair_bad_domain", socketpair(AF_INET, SOCK_STREAM, 0, sv), EOPNOTSUPP);
    EXPECT_ERR("socket_bad_type", socket(AF_UNIX, 99, 0), EINVAL);
    EXPECT_ERR("socket_bad_protocol", socket(AF_UNIX, SOCK_STREAM, 5), EPROTONOSUPPORT);
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    strcpy(addr.sun_path, "sock");
    EXPECT_OK("bind", bind(s, (struct sockaddr *)&addr, sizeof addr));
    struct stat st;
    CHECK("bind_creates_socket_file", stat("sock", &st) == 0 && S_ISSOCK(st.st_mode));
    int s2 = socket(AF_UNIX, SOCK_STREAM, 0);
    EXPECT_ERR("bind_addr_in_use", bind(s2, (struct sockaddr *)&addr, sizeof addr), EADDRINUSE);
    EXPECT_ERR("connect_not_listening", connect(s2, (struct sockaddr *)&addr, sizeof addr), ECONNREFUSED);
    EXPECT_OK("listen", listen(s, 5));
    EXPECT_OK("connect", connect(s2, (struct sockaddr *)&addr, sizeof addr));
    int a;
    EXPECT_OK("accept", a = accept(s, NULL, NULL));
    EXPECT_EQ("accepted_write", write(a, "hi", 2), 2);
    EXPECT_EQ("client_read", read(s2, buf, sizeof buf), 2);
    struct sockaddr_un got;
    socklen_t len = sizeof got;
    CHECK("getsockname", getsockname(s, (struct sockaddr *)&got, &len) == 0 && !strcmp(got.sun_path, "sock"));
    len = sizeof got;
    CHECK("getpeername", getpeername(s2, (struct sockaddr *)&got, &len) == 0 && !strcmp(got.sun_path, "sock"));
    struct ucred cred;
    len = sizeof cred;
    CHECK("so_peercred", getsockopt(a, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 && cred.pid == getpid() && cred.uid == getuid());
    int type;
    len = sizeof type;
    CHECK("so_type", getsockopt(s, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM);
    int nb = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
    bind(nb, (struct sockaddr *)&(struct sockaddr_un){AF_UNIX, "sock2"}, sizeof addr);
    listen(nb, 1);
    EXPECT_ERR("accept_nonblock_eagain", accept(nb, NULL, NULL), EAGAIN);
    struct sockaddr_un missing = {.sun_family = AF_UNIX};
    strcpy(missing.sun_path, "nosuch");
    int s3 = socket(AF_UNIX, SOCK_STREAM, 0);
    EXPECT_ERR("connect_enoent", connect(s3, (struct sockaddr *)&missing, sizeof missing), ENOENT);
    struct sockaddr_un abs = {.sun_family = AF_UNIX};
    snprintf(abs.sun_path + 1, sizeof abs.sun_path - 1, "bwst-%d", getpid());
    socklen_t alen = offsetof(struct sockaddr_un, sun_path) + 1 + strlen(abs.sun_path + 1);
    int ab = socket(AF_UNIX, SOCK_STREAM, 0);
    EXPECT_OK("bind_abstract", bind(ab, (struct sockaddr *)&abs, alen));
    listen(ab, 1);
    int ac = socket(AF_UNIX, SOCK_STREAM, 0);
    EXPECT_OK("connect_abstract", connect(ac, (struct sockaddr *)&abs, alen));
    EXPECT_ERR("accept_on_unlistened", accept(s2, NULL, NULL), EINVAL);
    EXPECT_ERR("accept_not_socket", accept(0 == 0 ? open("/dev/null", O_RDONLY) : 0, NULL, NULL), ENOTSOCK);
    struct pollfd pf = {s, POLLIN, 0};
    int c4 = socket(AF_UNIX, SOCK_STREAM, 0);
    connect(c4, (struct sockaddr *)&addr, sizeof addr);
    EXPECT_EQ("poll_listener_readable", poll(&pf, 1, 0), 1);
    close(a);
    EXPECT_EQ("peer_close_eof", read(s2, buf, sizeof buf), 0);
    EXPECT_ERR("bind_efault", bind(s3, BADPTR, sizeof addr), EFAULT);
    return DONE();
}
