/* Unknown and out-of-range syscall numbers, and the x32 bit. */
/* syscalls:  */
#include "common.h"

int main(void) {
    EXPECT_ERR("nr_1000_enosys", RAW(1000), ENOSYS);
    EXPECT_ERR("nr_max_enosys", RAW(0x3fffffff), ENOSYS);
    EXPECT_ERR("nr_negative_enosys", RAW(-1L), ENOSYS);
    EXPECT_ERR("nr_512_enosys", RAW(512), ENOSYS);
    EXPECT_ERR("nr_x32_bit_enosys", RAW(0x40000000 | SYS_getpid), ENOSYS);
    EXPECT_ERR("nr_unassigned_387", RAW(387), ENOSYS);
    EXPECT_ERR("nr_removed_create_module", RAW(SYS_create_module), ENOSYS);
    EXPECT_ERR("nr_removed_get_kernel_syms", RAW(SYS_get_kernel_syms), ENOSYS);
    EXPECT_ERR("nr_removed_query_module", RAW(SYS_query_module), ENOSYS);
    EXPECT_ERR("nr_nfsservctl", RAW(SYS_nfsservctl), ENOSYS);
    EXPECT_ERR("nr_tuxcall", RAW(SYS_tuxcall), ENOSYS);
    EXPECT_ERR("nr_security", RAW(SYS_security), ENOSYS);
    EXPECT_ERR("nr_vserver", RAW(SYS_vserver), ENOSYS);
    EXPECT_ERR("nr_afs_syscall", RAW(SYS_afs_syscall), ENOSYS);
    EXPECT_ERR("nr_putpmsg", RAW(SYS_putpmsg), ENOSYS);
    EXPECT_ERR("nr_getpmsg", RAW(SYS_getpmsg), ENOSYS);
    EXPECT_EQ("getpid_still_works", RAW(SYS_getpid), getpid());
    return DONE();
}
