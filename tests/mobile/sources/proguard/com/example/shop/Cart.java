package com.example.shop;

/** A cart that wraps pricing failures, so the crash carries a cause chain. */
final class Cart {
    private final String[] skus;

    Cart(String[] skus) {
        this.skus = skus;
    }

    int checkout(PriceCalculator calculator) {
        try {
            return calculator.total(skus);
        } catch (CheckoutException e) {
            throw new IllegalStateException("checkout failed for " + skus.length + " items", e);
        }
    }
}
