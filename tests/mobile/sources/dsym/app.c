/*
 * Freestanding (no Apple SDK here: no libc, no headers), so it links with lld alone.
 * tests/mobile/artefacts.py takes a "crash" address inside process_order where the
 * always-inlined apply_fee's code sits.
 */
static inline __attribute__((always_inline)) int apply_fee(int amount) {
    if (amount > 100)
        __builtin_trap();
    return amount + 5;
}

__attribute__((noinline)) int process_order(int amount) {
    int total = apply_fee(amount);
    return total * 2;
}

int main(int argc, char **argv) {
    (void)argv;
    return process_order(250 + argc);
}
