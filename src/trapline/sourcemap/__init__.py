"""``trapline sourcemap``: PostHog's CLI's ``inject``/``upload``/``process``, reimplemented.

It gives minified JavaScript chunk ids that posthog-js reports on stack frames, and uploads each
file with its source map as a symbol set, to Trapline or to PostHog itself (same protocol).

::

    discover   finding the files and their maps
    inject     the snippet, the chunkId comment and the rewritten map (pure)
    mappings   the VLQ codec and the line/column shifts;  maps: index maps flattened
    container  the uploaded bytes
    release    the release from flags and git;  config: host, key, project
    client     the upload protocol (httpx)
    command    argparse handlers and progress;  cli_common: the flags, config, release and output
               plumbing ``command`` and ``mobile`` share
    mobile     ``trapline hermes | proguard | dsym | symbol-sets``: the same upload for mobile
               and native symbols;  debugfiles: finding ELF/dSYM objects and zipping them
"""
