package com.example.shop;

/**
 * Runs a checkout that crashes, then prints the exception list the way posthog-android's
 * ThrowableCoercer sends it (outermost exception first, then its causes; each stack trace
 * bottom-up, entry point first). The map id is the first argument.
 */
public final class Main {
    public static void main(String[] args) {
        String mapId = args[0];
        try {
            Cart cart = new Cart(new String[] {"BOOK-1", "MUG-7"});
            System.out.println("total " + cart.checkout(new PriceCalculator(10)));
        } catch (Throwable crash) {
            System.out.println(exceptionList(crash, mapId));
        }
    }

    private static String exceptionList(Throwable crash, String mapId) {
        StringBuilder out = new StringBuilder("[");
        long threadId = Thread.currentThread().getId();
        for (Throwable t = crash; t != null; t = t.getCause()) {
            if (t != crash) {
                out.append(',');
            }
            appendException(out, t, threadId, mapId);
        }
        return out.append(']').toString();
    }

    private static void appendException(StringBuilder out, Throwable t, long threadId, String mapId) {
        String name = t.getClass().getName();
        int dot = name.lastIndexOf('.');
        out.append("{\"type\":").append(quote(dot < 0 ? name : name.substring(dot + 1)));
        if (dot >= 0) {
            out.append(",\"module\":").append(quote(name.substring(0, dot)));
        }
        String message = t.getMessage();
        if (message != null && !message.isEmpty()) {
            out.append(",\"value\":").append(quote(message));
        }
        out.append(",\"thread_id\":").append(threadId);
        out.append(",\"mechanism\":{\"handled\":false,\"synthetic\":false,\"type\":\"generic\"}");
        out.append(",\"stacktrace\":{\"type\":\"raw\",\"frames\":[");
        StackTraceElement[] trace = t.getStackTrace();
        for (int i = trace.length - 1; i >= 0; i--) {
            StackTraceElement e = trace[i];
            out.append("{\"platform\":\"java\",\"module\":").append(quote(e.getClassName()));
            out.append(",\"function\":").append(quote(e.getMethodName()));
            if (e.getFileName() != null && !e.getFileName().isEmpty()) {
                out.append(",\"filename\":").append(quote(e.getFileName()));
            }
            if (e.getLineNumber() >= 0) {
                out.append(",\"lineno\":").append(e.getLineNumber());
            }
            out.append(",\"in_app\":true,\"map_id\":").append(quote(mapId)).append('}');
            if (i > 0) {
                out.append(',');
            }
        }
        out.append("]}}");
    }

    private static String quote(String s) {
        StringBuilder q = new StringBuilder("\"");
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '"' || c == '\\') {
                q.append('\\').append(c);
            } else if (c < 0x20) {
                q.append(String.format("\\u%04x", (int) c));
            } else {
                q.append(c);
            }
        }
        return q.append('"').toString();
    }
}
