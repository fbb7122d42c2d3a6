/*
 * A tiny "native crash": main -> process_order -> apply_fee (always inlined) -> crash_here,
 * which collects the return addresses on its stack (as a crash handler would) and prints
 * them, with the program's own load address, as the JSON an SDK would send.
 * tests/mobile/artefacts.py builds it, splits off its debug info and runs the stripped copy.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <elf.h>
#include <execinfo.h>
#include <link.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

struct image {
    uintptr_t start;
    uintptr_t end;
    const char *path;
};

/* The main program is the first object dl_iterate_phdr reports; its extent is the span
   of its PT_LOAD segments. */
static int find_main_image(struct dl_phdr_info *info, size_t size, void *data) {
    (void)size;
    struct image *image = data;
    uintptr_t low = UINTPTR_MAX, high = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD)
            continue;
        uintptr_t start = info->dlpi_addr + ph->p_vaddr;
        if (start < low)
            low = start;
        if (start + ph->p_memsz > high)
            high = start + ph->p_memsz;
    }
    image->start = low;
    image->end = high;
    return 1;
}

__attribute__((noinline)) static void crash_here(int order_id) {
    void *addresses[64];
    int count = backtrace(addresses, 64);
    struct image image = {0, 0, NULL};
    dl_iterate_phdr(find_main_image, &image);
    static char path[4096];
    ssize_t length = readlink("/proc/self/exe", path, sizeof path - 1);
    path[length > 0 ? length : 0] = '\0';

    /* backtrace() lists the innermost frame first; the event wants them bottom-up. */
    printf("{\"order_id\": %d, \"frames\": [", order_id);
    int first = 1;
    for (int i = count - 1; i >= 0; i--) {
        uintptr_t address = (uintptr_t)addresses[i];
        if (address < image.start || address >= image.end)
            continue;
        printf("%s{\"platform\": \"native\", \"instruction_addr\": \"0x%lx\", \"image_addr\": \"0x%lx\", "
               "\"module\": \"crash\", \"in_app\": true}",
               first ? "" : ", ", (unsigned long)address, (unsigned long)image.start);
        first = 0;
    }
    printf("], \"debug_image\": {\"type\": \"elf\", \"image_addr\": \"0x%lx\", \"image_size\": %lu, "
           "\"code_file\": \"%s\"}}\n",
           (unsigned long)image.start, (unsigned long)(image.end - image.start), path);
    fflush(stdout);
    abort();
}

static inline __attribute__((always_inline)) int apply_fee(int order_id, int amount) {
    if (amount > 100)
        crash_here(order_id);
    return amount + 5;
}

__attribute__((noinline)) int process_order(int order_id, int amount) {
    int total = apply_fee(order_id, amount);
    return total * 2;
}

int main(int argc, char **argv) {
    (void)argv;
    return process_order(41 + argc, 250 + argc) == 0;
}
