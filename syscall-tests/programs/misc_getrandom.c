/* getrandom and the random devices. */
/* syscalls: getrandom */
#include "common.h"
#include <sys/random.h>
#include <sys/auxv.h>

int main(void) {
    unsigned char a[64], b[64];
    EXPECT_EQ("getrandom", getrandom(a, sizeof a, 0), 64);
    getrandom(b, sizeof b, 0);
    CHECK("getrandom_differs", memcmp(a, b, 64) != 0);
    EXPECT_EQ("getrandom_nonblock", getrandom(a, 16, GRND_NONBLOCK), 16);
    EXPECT_EQ("getrandom_random_flag", getrandom(a, 16, GRND_RANDOM | GRND_NONBLOCK), 16);
    EXPECT_EQ("getrandom_insecure", getrandom(a, 16, 0x4), 16);
    EXPECT_ERR("getrandom_bad_flags", getrandom(a, 16, 0x80), EINVAL);
    EXPECT_ERR("getrandom_insecure_and_random", getrandom(a, 16, 0x4 | GRND_RANDOM), EINVAL);
    EXPECT_ERR("getrandom_efault", RAW(SYS_getrandom, BADPTR, 16, 0), EFAULT);
    EXPECT_EQ("getrandom_zero", getrandom(a, 0, 0), 0);
    static unsigned char big[1 << 26];
    long n = getrandom(big, sizeof big, 0);
    CHECK("getrandom_large_capped", n == 33554431 || n == (long)sizeof big);
    int counts[256] = {0};
    getrandom(big, 1 << 20, 0);
    for (int i = 0; i < (1 << 20); i++) counts[big[i]]++;
    int minc = 1 << 30, maxc = 0;
    for (int i = 0; i < 256; i++) { if (counts[i] < minc) minc = counts[i]; if (counts[i] > maxc) maxc = counts[i]; }
    CHECK("getrandom_distribution", minc > 3500 && maxc < 4700);
    int fd = open("/dev/urandom", O_RDONLY);
    CHECK("dev_urandom", fd >= 0 && read(fd, a, 64) == 64);
    close(fd);
    fd = open("/dev/random", O_RDONLY | O_NONBLOCK);
    CHECK("dev_random", fd >= 0 && read(fd, a, 16) == 16);
    close(fd);
    unsigned char *r = (unsigned char *)getauxval(AT_RANDOM);
    int nonzero = 0;
    for (int i = 0; r && i < 16; i++) nonzero |= r[i];
    CHECK("auxv_at_random_16_bytes", r && nonzero);
    return DONE();
}
