package com.example.shop;

/** The app's own exception type: ProGuard renames it, so its name must be remapped. */
public class CheckoutException extends RuntimeException {
    public CheckoutException(String message) {
        super(message);
    }

    public CheckoutException(String message, Throwable cause) {
        super(message, cause);
    }
}
