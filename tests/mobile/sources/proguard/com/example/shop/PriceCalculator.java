package com.example.shop;

/** Prices a cart; unitPrice is small and called once, so ProGuard's optimiser inlines it. */
final class PriceCalculator {
    private final int discountPercent;

    PriceCalculator(int discountPercent) {
        this.discountPercent = discountPercent;
    }

    int total(String[] skus) {
        int sum = 0;
        for (String sku : skus) {
            sum += unitPrice(sku);
        }
        return sum - sum * discountPercent / 100;
    }

    private static int unitPrice(String sku) {
        if (sku.startsWith("BOOK-")) {
            return 1200;
        }
        throw new CheckoutException("no price for " + sku);
    }
}
