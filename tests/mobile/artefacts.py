"""Real symbol artefacts for symbolication tests, built at test time with the real tools.

Each builder compiles a small program from ``tests/mobile/sources``, produces the files a
mobile SDK's build step would upload (a Hermes source map, a ProGuard mapping, an ELF debug
file, a dSYM), runs the program where a runtime exists here, and returns a frozen dataclass
with the paths, the stack trace the crash produces in the shape the SDK sends, and the
ground truth each frame should symbolicate to. The ground truth is never typed in: it comes
from the compiler's own dump, from running the un-obfuscated program, or from
llvm-symbolizer, so the tests check the symbolicator against the toolchain, not against us.

Outputs are built once into ``.cache/mobile-artefacts/<kind>-<hash>`` (ignored by git), the
hash covering the sources and this file, under an fcntl lock so that pytest-xdist workers
building at the same time wait for one another and then reuse the result. Builders skip,
saying why, when a tool they need is missing.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import uuid
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
SOURCES = HERE / "sources"
ROOT = HERE.parent.parent
CACHE = ROOT / ".cache" / "mobile-artefacts"
# hermesc comes from npm; its own prefix so tests/js.py's install list stays as it is.
HERMES_NPM_PREFIX = ROOT / ".cache" / "npm-hermes"
# 0.14.1 reports "Hermes release version: 0.12.0, HBC bytecode version: 96" and ships a
# linux64 hermesc; checked to compile the app and emit x_hermes_function_offsets.
HERMES_COMPILER_VERSION = "0.14.1"
HERMES_BUNDLE_NAME = "index.android.bundle"
# Metro and React Native's Metro config, for bundling as a React Native release build does,
# in a prefix of their own. Metro 0.84 is the newest that runs on Node 20 (0.85 wants 22);
# React Native 0.86's packages are the ones built on it. @babel/runtime is what an app
# depends on for the helpers Babel's class transform imports.
METRO_NPM_PREFIX = ROOT / ".cache" / "npm-metro"
METRO_PACKAGES = {
    "metro": "0.84.6",
    "metro-config": "0.84.6",
    "metro-source-map": "0.84.6",
    "metro-symbolicate": "0.84.6",
    "@react-native/metro-config": "0.86.3",
    "@react-native/metro-babel-transformer": "0.86.3",
    "@babel/runtime": "7.29.16",
}
JAVA_PACKAGE = "com.example.shop"


# --- results ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceFrame:
    """Where a frame comes from in the original source. line is 1-based; column, where
    known, is 1-based too; file is as the artefact names it (None: no line information)."""

    function: str
    file: str | None
    line: int
    column: int | None = None


@dataclass(frozen=True)
class HermesBuild:
    bundle_path: Path  # the Hermes bytecode bundle (HBC), named index.android.bundle
    map_path: Path  # the source map exactly as hermesc wrote it
    source_path: Path  # app.js as compiled, beside the map (the map's "sources" name it)
    hermesc_version: str  # "Hermes release version" from hermesc --version
    # Raw frames as posthog-react-native sends them, bottom-up (entry first, crash site
    # last); the caller adds chunk_id. Read-only: copy before changing.
    frames: tuple[dict[str, Any], ...]
    # Per frame, same order: the original function, the map's "sources" entry, line, column.
    expected: tuple[SourceFrame, ...]
    function_offsets: tuple[int, ...]  # x_hermes_function_offsets["0"]: virtual offset per function


@dataclass(frozen=True)
class MetroHermesBuild:
    bundle_path: Path  # the Hermes bytecode bundle (HBC) hermesc made of Metro's bundle
    js_bundle_path: Path  # Metro's minified JS bundle, as hermesc read it
    packager_map_path: Path  # Metro's map of the JS bundle, with its function maps
    compiler_map_path: Path  # hermesc's map of the bytecode, into the JS bundle
    # The two composed as react-native's compose-source-maps does: what posthog-cli uploads.
    composed_map_path: Path
    source_dir: Path  # the app's modules as bundled; the maps name them by absolute path
    # Raw frames as posthog-react-native sends them, bottom-up (the entry module first, the
    # throw last), each named as Hermes reports it (minified, or "anonymous"); the caller
    # adds chunk_id. Read-only: copy before changing.
    frames: tuple[dict[str, Any], ...]
    # Per frame, the Hermes function index and the offset inside it (what a Hermes crash
    # report records); colno is the function's virtual offset plus that offset.
    bytecode_positions: tuple[tuple[int, int], ...]
    # Per frame, metro-symbolicate's answer on the composed map: the source as the map
    # names it (an absolute path), line, column (1-based) and the function as Metro names it.
    expected: tuple[SourceFrame, ...]
    versions: dict[str, str]  # tool or npm package -> version the artefacts were built with


@dataclass(frozen=True)
class JavaFrame:
    class_name: str
    method: str
    file: str | None
    line: int | None


@dataclass(frozen=True)
class JavaException:
    class_name: str  # fully qualified, e.g. com.example.shop.CheckoutException
    value: str | None
    frames: tuple[JavaFrame, ...]  # bottom-up, like the frames sent


@dataclass(frozen=True)
class ProguardBuild:
    mapping_path: Path  # ProGuard's -printmapping output
    map_id: str  # the id the program put on every frame (a UUID derived from the mapping)
    jar_path: Path  # the obfuscated jar that was run
    plain_jar_path: Path  # the same program before ProGuard
    proguard_version: str
    # The exception list the obfuscated program printed, as posthog-android sends it:
    # outermost exception first, then its causes. Read-only: copy before changing.
    exception_list: tuple[dict[str, Any], ...]
    # Per exception, same order: what the un-obfuscated run of the same program printed.
    expected: tuple[JavaException, ...]

    @property
    def crash_site(self) -> JavaException:
        """The innermost cause: the exception thrown where the program crashed."""
        return self.expected[-1]


@dataclass(frozen=True)
class NativeBuild:
    binary_path: Path  # the stripped executable that was run (carries a .gnu_debuglink)
    unstripped_path: Path  # the executable as linked, with its debug info
    debug_file_path: Path  # llvm-objcopy --only-keep-debug output
    debug_id: str  # symbolic's debug_id of the debug file (same as the stripped binary's)
    code_id: str  # the GNU build id, hex
    # Frames bottom-up as the program printed them (only its own image), plus debug_image
    # carrying debug_id and code_id. Read-only: copy before changing.
    frames: tuple[dict[str, Any], ...]
    debug_image: dict[str, Any]
    # Per frame: the address to look up in the debug file (instruction_addr - image_addr - 1:
    # every address here is a return address) and llvm-symbolizer's answer there, the
    # innermost (inlined) function first, the real function last.
    lookup_addresses: tuple[int, ...]
    expected: tuple[tuple[SourceFrame, ...], ...]


@dataclass(frozen=True)
class DsymBuild:
    binary_path: Path  # the Mach-O executable (arm64, macOS 11) linked by ld64.lld
    dsym_path: Path  # the .dSYM bundle dsymutil made
    dwarf_path: Path  # the DWARF file inside it
    debug_id: str  # the LC_UUID, uppercase, as symbolic reads it from the DWARF file
    arch: str
    image_addr: int  # the __TEXT segment's vmaddr (where __mh_execute_header is)
    # The faulting instruction (the brk that __builtin_trap became inside the inlined
    # helper), absolute; it is the crashing frame, so it is looked up as is (no - 1).
    crash_addr: int
    expected: tuple[SourceFrame, ...]  # llvm-symbolizer's answer, innermost first


# --- shared machinery ---------------------------------------------------------------------


def _require(*tools: str) -> dict[str, str]:
    found = {tool: shutil.which(tool) for tool in tools}
    missing = [tool for tool, path in found.items() if path is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed: `make test` installs them with apt-get")
    return {tool: path for tool, path in found.items() if path is not None}


def _run(args: Sequence[str | Path], cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=300, check=False)
    if check and result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(map(str, args))} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return result


def _cached_build(kind: str, sources: Sequence[Path], build: Callable[[Path], None]) -> Path:
    """The folder holding kind's outputs, building it under a lock when it is missing.

    Built in place (not renamed from a temporary folder) because artefacts record their own
    paths (the ELF's code_file, the map's sources); a ``.complete`` marker written last tells
    a finished build from one a killed process left half done.
    """
    digest = hashlib.sha256(Path(__file__).read_bytes())
    for source in sorted(sources):
        digest.update(str(source.relative_to(SOURCES)).encode() + b"\0" + source.read_bytes())
    target = CACHE / f"{kind}-{digest.hexdigest()[:16]}"
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / f".{kind}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (target / ".complete").exists():
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir()
            build(target)
            (target / ".complete").touch()
    return target


def _symbolize(tool: str, obj: Path, addresses: Sequence[int], cwd: Path) -> list[tuple[SourceFrame, ...]]:
    """llvm-symbolizer's inline chain (innermost first) at each address, as SourceFrames."""
    result = _run(
        [tool, f"--obj={obj}", "--inlining", "--functions=linkage", "--output-style=JSON", *map(hex, addresses)], cwd
    )
    chains = []
    for line in result.stdout.splitlines():
        if not line.strip():
            continue
        # One JSON document per line: an object per address, or an array of them when the
        # addresses are given on the command line.
        entries = json.loads(line)
        for entry in entries if isinstance(entries, list) else [entries]:
            chain = tuple(
                SourceFrame(
                    function=symbol["FunctionName"],
                    file=Path(symbol["FileName"]).name or None,
                    line=int(symbol["Line"]),
                    column=int(symbol["Column"]) or None,
                )
                for symbol in entry["Symbol"]
            )
            chains.append(chain)
    if len(chains) != len(addresses):
        raise RuntimeError(f"llvm-symbolizer answered {len(chains)} of {len(addresses)} addresses:\n{result.stdout}")
    return chains


def _symbolic_object(path: Path) -> Any:
    from symbolic.debuginfo import Archive

    return next(iter(Archive.open(str(path)).iter_objects()))


# --- Hermes -------------------------------------------------------------------------------


def hermesc_binary() -> Path:
    """hermesc from the npm package hermes-compiler, installed into .cache/npm-hermes."""
    HERMES_NPM_PREFIX.mkdir(parents=True, exist_ok=True)
    package = HERMES_NPM_PREFIX / "node_modules" / "hermes-compiler"
    with (HERMES_NPM_PREFIX / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        manifest = package / "package.json"
        if not manifest.exists() or json.loads(manifest.read_text()).get("version") != HERMES_COMPILER_VERSION:
            npm = shutil.which("npm")
            if npm is None:
                pytest.skip("npm is not installed: hermes-compiler (hermesc) cannot be fetched")
            _run(
                [
                    npm,
                    "install",
                    "--prefix",
                    HERMES_NPM_PREFIX,
                    "--no-audit",
                    "--no-fund",
                    f"hermes-compiler@{HERMES_COMPILER_VERSION}",
                ],
                HERMES_NPM_PREFIX,
            )
    binary = package / "hermesc" / "linux64-bin" / "hermesc"
    if not binary.exists():
        pytest.skip(f"hermes-compiler {HERMES_COMPILER_VERSION} has no linux64 hermesc")
    return binary


@dataclass(frozen=True)
class _HbcFunction:
    name: str
    index: int
    instructions: tuple[tuple[int, str], ...]  # (offset in the function, opcode)
    locations: dict[int, tuple[int, int]]  # offset -> (line, column), both 1-based


def _parse_bytecode_dump(dump: str) -> tuple[list[_HbcFunction], list[str]]:
    """Functions, their instructions with offsets, and the debug source table, from
    ``hermesc -dump-bytecode -pretty-disassemble=false`` (which prints ``[@ offset] Op``)."""
    functions: list[dict[str, Any]] = []
    by_debug_offset: dict[int, dict[str, Any]] = {}
    by_index: dict[int, dict[str, Any]] = {}
    filenames: list[str] = []
    current: dict[str, Any] | None = None
    section = ""
    for line in dump.splitlines():
        # Arrow functions and methods, which cannot be called with new, print as NCFunction<>.
        if m := re.match(r"(?:NC)?Function<(.*)>\(", line):
            current = {"name": m.group(1), "instructions": [], "locations": {}}
            functions.append(current)
            section = "code"
        elif m := re.match(r"Offset in debug table: source 0x([0-9a-f]+)", line):
            assert current is not None
            by_debug_offset[int(m.group(1), 16)] = current
        elif m := re.match(r"\[@ (\d+)\] (\w+)", line):
            assert current is not None and section == "code"
            current["instructions"].append((int(m.group(1)), m.group(2)))
        elif line.startswith("Debug filename table:"):
            section = "filenames"
        elif line.startswith("Debug source table:"):
            section = "sources"
        elif not line.startswith(" "):
            section = "" if line.strip() else section
        elif section == "filenames" and (m := re.match(r"\s+\d+: (.*)", line)):
            filenames.append(m.group(1))
        elif section == "sources" and (m := re.match(r"\s+0x([0-9a-f]+)\s+function idx (\d+)", line)):
            current = by_debug_offset[int(m.group(1), 16)]
            by_index[int(m.group(2))] = current
        elif section == "sources" and (m := re.match(r"\s+bc (\d+): line (\d+) col (\d+)", line)):
            assert current is not None
            current["locations"][int(m.group(1))] = (int(m.group(2)), int(m.group(3)))
    index_of = {id(f): i for i, f in by_index.items()}
    # A function with no debug info (nothing in it can throw or call) is not in the source
    # table; the dump lists functions in index order, so its place in the dump is its index.
    return [
        _HbcFunction(f["name"], index_of.get(id(f), position), tuple(f["instructions"]), f["locations"])
        for position, f in enumerate(functions)
    ], filenames


@functools.cache
def hermes_build() -> HermesBuild:
    """Compile sources/hermes/app.js to Hermes bytecode with a source map, as a React Native
    release build does (``hermesc -O -emit-binary -output-source-map``).

    There is no Hermes VM here to throw for real, so the frames are derived from the
    compiler's own account of the bytecode. A Hermes stack trace without debug info prints
    ``at fn (address at index.android.bundle:1:COL)`` where COL is the function's virtual
    offset (the summed bytecode sizes of the functions before it) plus the offset, inside
    the function, of the instruction the frame was at: for the crashing frame the
    ``Construct`` of ``new TypeError`` (Hermes records an Error's stack when it is
    constructed), for the callers their ``Call`` instruction (a frame's saved IP is the call
    itself, not the instruction after it). Instruction offsets come from
    ``-dump-bytecode -pretty-disassemble=false``; the virtual offsets are the map's
    ``x_hermes_function_offsets``. The expected line and column are the dump's debug source
    table entry for that very instruction, so they do not come from the map.
    """
    hermesc = hermesc_binary()
    source = SOURCES / "hermes" / "app.js"

    def build(out: Path) -> None:
        shutil.copy(source, out / "app.js")
        # Compiled by relative path from the build folder so the map's sources say "app.js".
        _run([hermesc, "-O", "-emit-binary", "-out", HERMES_BUNDLE_NAME, "-output-source-map", "app.js"], out)
        dump = _run([hermesc, "-O", "-dump-bytecode", "-pretty-disassemble=false", "app.js"], out).stdout
        (out / "bytecode.txt").write_text(dump)
        (out / "version.txt").write_text(_run([hermesc, "--version"], out).stdout)

    out = _cached_build("hermes", [source], build)
    map_path = out / f"{HERMES_BUNDLE_NAME}.map"
    source_map = json.loads(map_path.read_text())
    offsets = tuple(int(o) for o in source_map["x_hermes_function_offsets"]["0"])
    functions, filenames = _parse_bytecode_dump((out / "bytecode.txt").read_text())
    by_name = {f.name: f for f in functions}
    version = re.search(r"Hermes release version: (\S+)", (out / "version.txt").read_text())

    frames: list[dict[str, Any]] = []
    expected: list[SourceFrame] = []
    # The call chain of app.js, entry first: the global code calls main(), which calls
    # checkout(), which calls applyDiscount(), which builds the TypeError and throws it.
    for name, site in (("global", "Call"), ("main", "Call"), ("checkout", "Call"), ("applyDiscount", "Construct")):
        function = by_name[name]
        (offset,) = [o for o, op in function.instructions if op.startswith(site)]
        line, column = function.locations[offset]
        frames.append(
            {
                "platform": "hermes",
                "filename": HERMES_BUNDLE_NAME,
                "function": name,
                "in_app": True,
                "lineno": 1,
                "colno": offsets[function.index] + offset,
            }
        )
        expected.append(SourceFrame(function=name, file=filenames[0], line=line, column=column))
    return HermesBuild(
        bundle_path=out / HERMES_BUNDLE_NAME,
        map_path=map_path,
        source_path=out / "app.js",
        hermesc_version=version.group(1) if version else "unknown",
        frames=tuple(frames),
        expected=tuple(expected),
        function_offsets=offsets,
    )


# --- Metro + Hermes (a React Native release build) ----------------------------------------


def metro_node_modules() -> Path:
    """METRO_PACKAGES installed into .cache/npm-metro, at exactly those versions."""
    METRO_NPM_PREFIX.mkdir(parents=True, exist_ok=True)
    with (METRO_NPM_PREFIX / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        missing = [
            f"{name}@{version}"
            for name, version in METRO_PACKAGES.items()
            if _npm_version(METRO_NPM_PREFIX / "node_modules", name) != version
        ]
        if missing:
            npm = shutil.which("npm")
            if npm is None:
                pytest.skip("npm is not installed: Metro cannot be fetched")
            _run(
                [npm, "install", "--prefix", METRO_NPM_PREFIX, "--no-audit", "--no-fund", "--save-exact", *missing],
                METRO_NPM_PREFIX,
            )
    return METRO_NPM_PREFIX / "node_modules"


def _npm_version(node_modules: Path, name: str) -> str | None:
    manifest = node_modules / name / "package.json"
    return str(json.loads(manifest.read_text())["version"]) if manifest.exists() else None


def _node(node: str, script: Path, args: Sequence[str | Path], node_modules: Path, cwd: Path) -> str:
    """Run one of sources/metro/tools' scripts; NODE_PATH lets it require the npm prefix's
    packages although it lives outside it."""
    result = subprocess.run(
        [node, str(script), *map(str, args)],
        cwd=cwd,
        env={**os.environ, "NODE_PATH": str(node_modules)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"node {script.name} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result.stdout


# The crash path of sources/metro/app, entry module first: per frame the module, the text of
# the call (or the `new`) the frame stopped at, as written there, and the instruction it
# compiles to. Only the texts are typed in: which instruction of which Hermes function each
# one became is found through the compiler's debug info and Metro's map, and what the frame
# symbolicates to is metro-symbolicate's answer.
METRO_CRASH_PATH = (
    ("index.js", "startCheckout([{price: 12", "Call"),  # the module's own code
    ("index.js", "cart.total('BOGUS')", "Call"),  # in startCheckout
    ("cart.js", "priceWith(code, function", "Call"),  # in the method Cart#total
    ("cart.js", "compute(code)", "Call"),  # in priceWith
    ("cart.js", "applyDiscount(subtotal, discountCode)", "Call"),  # in the anonymous callback
    ("cart.js", "new TypeError(", "Construct"),  # in the arrow function applyDiscount
)


def _metro_crash_frames(out: Path) -> list[dict[str, Any]]:
    """The Hermes function and bytecode offset of each step of METRO_CRASH_PATH.

    Every call and construct instruction in the dump has a position in the JS bundle (the
    debug source table); Metro's own map takes that back to the app's source, and the frame
    is the one instruction that lands inside the step's text on its line. The composed map is
    not used here, so the frames do not depend on what is being tested.
    """
    from symbolic.sourcemap import SourceMapView

    packager = SourceMapView.from_json_bytes((out / "js" / f"{HERMES_BUNDLE_NAME}.packager.map").read_bytes())
    offsets = json.loads((out / f"{HERMES_BUNDLE_NAME}.compiler.map").read_text())["x_hermes_function_offsets"]["0"]
    functions, _ = _parse_bytecode_dump((out / "bytecode.txt").read_text())
    frames = []
    for file, text, opcode in METRO_CRASH_PATH:
        lines = (out / "app" / file).read_text().splitlines()
        ((line, start),) = [(n, row.index(text)) for n, row in enumerate(lines, 1) if text in row]
        found = []
        for function in functions:
            for offset, op in function.instructions:
                location = function.locations.get(offset)
                if not op.startswith(opcode) or location is None:
                    continue
                token = packager.lookup(location[0] - 1, location[1] - 1)
                if (
                    token is not None
                    and token.src is not None
                    and Path(token.src).name == file
                    and token.src_line + 1 == line
                    and start <= token.src_col < start + len(text)
                ):
                    found.append((function, offset))
        if len(found) != 1:
            raise RuntimeError(f"{len(found)} {opcode} instructions at {file}:{line} {text!r}")
        ((function, offset),) = found
        frames.append(
            {
                "name": function.name,
                "function_id": function.index,
                "offset": offset,
                "column": offsets[function.index] + offset,
            }
        )
    return frames


@functools.cache
def metro_hermes_build() -> MetroHermesBuild:
    """sources/metro/app built as a React Native release build for Android builds it.

    Metro bundles the app with React Native's config (its Babel preset and polyfills,
    minified, dev off), writing a map whose x_facebook_sources holds the function map Metro
    makes of every module; hermesc compiles that bundle to bytecode with its own map into the
    bundle; metro-source-map's composeSourceMaps composes the two, as react-native's
    compose-source-maps script does, into the map that keeps the function maps and hermesc's
    x_hermes_function_offsets: the one a React Native project uploads.

    The frames are derived from the compiler's account of the bytecode as in hermes_build
    (the saved IP of a caller is its Call, of the crash the Construct of the TypeError), and
    named as Hermes names them: the minifier renamed the functions, and a function without a
    name (the module factory, the callback, the class method Babel turned into a property)
    is "anonymous". What each frame should symbolicate to is metro-symbolicate's answer for
    the Hermes crash frame (function index, offset) on the composed map.
    """
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: Metro cannot run")
    version = _run([node, "--version"], ROOT).stdout.strip()
    if tuple(int(part) for part in version.lstrip("v").split(".")[:2]) < (20, 19):
        pytest.skip(f"node {version} is too old for Metro {METRO_PACKAGES['metro']} (it needs 20.19 or later)")
    hermesc = hermesc_binary()
    node_modules = metro_node_modules()
    tools = SOURCES / "metro" / "tools"
    sources = sorted((SOURCES / "metro").rglob("*.js"))

    def build(out: Path) -> None:
        shutil.copytree(SOURCES / "metro" / "app", out / "app")
        (out / "js").mkdir()
        js = out / "js" / HERMES_BUNDLE_NAME
        packager_map = out / "js" / f"{HERMES_BUNDLE_NAME}.packager.map"
        _node(node, tools / "bundle.js", [out / "app", node_modules, js, packager_map], node_modules, out)
        for crawl_cache in (out / "js").glob("metro-file-map-*"):
            crawl_cache.unlink()  # Metro's cache of the crawl, no use once the bundle is made
        # As React Native's Gradle plugin runs it; hermesc writes its map beside its output.
        source = js.relative_to(out)
        _run([hermesc, "-O", "-emit-binary", "-out", HERMES_BUNDLE_NAME, "-output-source-map", source], out)
        (out / f"{HERMES_BUNDLE_NAME}.map").rename(out / f"{HERMES_BUNDLE_NAME}.compiler.map")
        dump = _run([hermesc, "-O", "-dump-bytecode", "-pretty-disassemble=false", source], out).stdout
        (out / "bytecode.txt").write_text(dump)
        _node(
            node,
            tools / "compose.js",
            [packager_map, f"{HERMES_BUNDLE_NAME}.compiler.map", f"{HERMES_BUNDLE_NAME}.map"],
            node_modules,
            out,
        )
        frames = _metro_crash_frames(out)
        (out / "frames.json").write_text(json.dumps(frames))
        asked = [{"FunctionID": f["function_id"], "ByteCodeOffset": f["offset"], "column": f["column"]} for f in frames]
        answers = _node(
            node, tools / "symbolicate.js", [f"{HERMES_BUNDLE_NAME}.map", json.dumps(asked)], node_modules, out
        )
        (out / "symbolicated.json").write_text(answers)
        versions = {
            name: _npm_version(node_modules, name) or "unknown"
            for name in [*METRO_PACKAGES, "@react-native/babel-preset", "metro-minify-terser", "terser"]
        }
        hermes = re.search(r"Hermes release version: (\S+)", _run([hermesc, "--version"], out).stdout)
        versions["hermesc"] = hermes.group(1) if hermes else "unknown"
        versions["node"] = version.removeprefix("v")
        (out / "versions.json").write_text(json.dumps(versions))

    out = _cached_build("metro", sources, build)
    frames = json.loads((out / "frames.json").read_text())
    answers = json.loads((out / "symbolicated.json").read_text())
    return MetroHermesBuild(
        bundle_path=out / HERMES_BUNDLE_NAME,
        js_bundle_path=out / "js" / HERMES_BUNDLE_NAME,
        packager_map_path=out / "js" / f"{HERMES_BUNDLE_NAME}.packager.map",
        compiler_map_path=out / f"{HERMES_BUNDLE_NAME}.compiler.map",
        composed_map_path=out / f"{HERMES_BUNDLE_NAME}.map",
        source_dir=out / "app",
        frames=tuple(
            {
                "platform": "hermes",
                "filename": HERMES_BUNDLE_NAME,
                # Hermes prints a function without a name as "anonymous".
                "function": frame["name"] or "anonymous",
                "in_app": True,
                "lineno": 1,
                "colno": frame["column"],
            }
            for frame in frames
        ),
        bytecode_positions=tuple((frame["function_id"], frame["offset"]) for frame in frames),
        # metro-symbolicate's lines are 1-based and its columns 0-based.
        expected=tuple(
            SourceFrame(function=a["functionName"], file=a["source"], line=a["line"], column=a["column"] + 1)
            for a in answers
        ),
        versions=json.loads((out / "versions.json").read_text()),
    )


# --- ProGuard -----------------------------------------------------------------------------


def _java8_api_jar(javac: str, target: Path) -> None:
    """A library jar of the Java 8 API for ProGuard, taken from the JDK's ct.sym.

    Debian's ProGuard 6.2.2 reads class files up to Java 13 only, and bookworm's JDK is 17,
    so its jmods cannot be the -libraryjars. ct.sym (what javac --release uses) holds each
    old release's API as signature-only class files, stamped with the JDK's own class file
    version: the release-8 ones, renamed .class and stamped 52 (Java 8), are exactly what
    the program (compiled with --release 8) was checked against.
    """
    java_home = Path(javac).resolve().parent.parent
    ct_sym = java_home / "lib" / "ct.sym"
    if not ct_sym.exists():
        pytest.skip(f"{ct_sym} is missing: no Java 8 API for ProGuard's -libraryjars")
    with zipfile.ZipFile(ct_sym) as source, zipfile.ZipFile(target, "w") as out:
        written: set[str] = set()
        for name in source.namelist():
            releases, _, rest = name.partition("/")
            if "8" not in releases or not name.endswith(".sig"):
                continue
            # <releases>/<module>/<package path>/<Class>.sig
            path = rest.partition("/")[2].removesuffix(".sig") + ".class"
            if path in written:
                continue
            written.add(path)
            data = bytearray(source.read(name))
            data[6:8] = (52).to_bytes(2, "big")
            out.writestr(path, bytes(data))


def _exception_truth(exceptions: list[dict[str, Any]]) -> tuple[JavaException, ...]:
    return tuple(
        JavaException(
            class_name=f"{e['module']}.{e['type']}" if e.get("module") else e["type"],
            value=e.get("value"),
            frames=tuple(
                JavaFrame(f["module"], f["function"], f.get("filename"), f.get("lineno"))
                for f in e["stacktrace"]["frames"]
            ),
        )
        for e in exceptions
    )


@functools.cache
def proguard_build() -> ProguardBuild:
    """Compile sources/proguard, obfuscate and optimise it with ProGuard, and run both jars.

    The program crashes on purpose (CheckoutException thrown in PriceCalculator.unitPrice,
    which ProGuard inlines through total() into Cart.checkout, wrapped there in an
    IllegalStateException) and prints the exception list itself, so the obfuscated run gives
    the frames an app would send and the plain run, same input, gives the truth.
    """
    tools = _require("javac", "jar", "java", "proguard")
    sources = sorted((SOURCES / "proguard").rglob("*.java"))

    def build(out: Path) -> None:
        _run([tools["javac"], "--release", "8", "-g", "-d", out / "classes", *sources], out)
        _run([tools["jar"], "cf", out / "app.jar", "-C", out / "classes", "."], out)
        _java8_api_jar(tools["javac"], out / "java8-api.jar")
        rules = out / "proguard.pro"
        rules.write_text(
            "\n".join(
                [
                    "-injars app.jar",
                    "-outjars app-obf.jar",
                    "-libraryjars java8-api.jar",
                    f"-keep public class {JAVA_PACKAGE}.Main {{ public static void main(java.lang.String[]); }}",
                    "-keepattributes SourceFile,LineNumberTable",
                    "-renamesourcefileattribute SourceFile",
                    "-printmapping mapping.txt",
                    "-optimizationpasses 3",
                    "-allowaccessmodification",
                    # Without this ProGuard also drops checkout's now constant parameter and
                    # maps it as "checkout$3578604e()": real, but then the remapped name no
                    # longer equals the plain run's, which is what the tests compare.
                    "-optimizations !method/removal/parameter,!method/propagation/*",
                    "",
                ]
            )
        )
        result = _run([tools["proguard"], f"@{rules}"], out)
        (out / "proguard.log").write_text(result.stdout + result.stderr)
        mapping = (out / "mapping.txt").read_bytes()
        map_id = str(uuid.uuid5(uuid.NAMESPACE_OID, hashlib.sha256(mapping).hexdigest()))
        for jar, name in (("app-obf.jar", "obfuscated.json"), ("app.jar", "plain.json")):
            run = _run([tools["java"], "-cp", jar, f"{JAVA_PACKAGE}.Main", map_id], out)
            (out / name).write_text(run.stdout)
        (out / "map_id.txt").write_text(map_id)

    out = _cached_build("proguard", sources, build)
    version = re.search(r"ProGuard, version (\S+)", (out / "proguard.log").read_text())
    return ProguardBuild(
        mapping_path=out / "mapping.txt",
        map_id=(out / "map_id.txt").read_text(),
        jar_path=out / "app-obf.jar",
        plain_jar_path=out / "app.jar",
        proguard_version=version.group(1) if version else "unknown",
        exception_list=tuple(json.loads((out / "obfuscated.json").read_text())),
        expected=_exception_truth(json.loads((out / "plain.json").read_text())),
    )


# --- native (ELF) -------------------------------------------------------------------------


@functools.cache
def native_build() -> NativeBuild:
    """Build sources/native/crash.c with clang, split its debug info into a separate file,
    run the stripped copy and symbolize its frames with llvm-symbolizer.

    The program prints its own frames: backtrace() return addresses that fall inside its own
    image, bottom-up, with the image's load address from dl_iterate_phdr (PIE, so it moves
    with ASLR from run to run, as on a device). Every address is a return address, the
    crash site's included (it is where backtrace() returns to), so the line of the call is
    at relative - 1, which is what expected is computed at.
    """
    tools = _require("clang", "llvm-objcopy", "llvm-symbolizer")
    source = SOURCES / "native" / "crash.c"

    def build(out: Path) -> None:
        shutil.copy(source, out / "crash.c")
        _run(
            [tools["clang"], "-g", "-O1", "-fno-omit-frame-pointer", "-Wl,--build-id", "-o", "crash.full", "crash.c"],
            out,
        )
        _run([tools["llvm-objcopy"], "--only-keep-debug", "crash.full", "crash.debug"], out)
        _run(
            [tools["llvm-objcopy"], "--strip-debug", "--add-gnu-debuglink=crash.debug", "crash.full", "crash"],
            out,
        )
        # It aborts after printing, as a crash would: the exit status is SIGABRT's.
        run = _run([out / "crash"], out, check=False)
        if not run.stdout.strip():
            raise RuntimeError(f"crash printed nothing ({run.returncode}): {run.stderr}")
        (out / "crash.json").write_text(run.stdout)

    out = _cached_build("native", [source], build)
    report = json.loads((out / "crash.json").read_text())
    debug_file = out / "crash.debug"
    obj = _symbolic_object(debug_file)
    debug_image = {**report["debug_image"], "debug_id": obj.debug_id, "code_id": obj.code_id}
    frames = tuple(report["frames"])
    lookups = tuple(int(f["instruction_addr"], 16) - int(f["image_addr"], 16) - 1 for f in frames)
    return NativeBuild(
        binary_path=out / "crash",
        unstripped_path=out / "crash.full",
        debug_file_path=debug_file,
        debug_id=obj.debug_id,
        code_id=obj.code_id,
        frames=frames,
        debug_image=debug_image,
        lookup_addresses=lookups,
        expected=tuple(_symbolize(tools["llvm-symbolizer"], debug_file, lookups, out)),
    )


# --- dSYM (Apple) -------------------------------------------------------------------------

DSYM_TARGET = "arm64-apple-macos11"


@functools.cache
def dsym_build() -> DsymBuild:
    """A Mach-O for macOS (arm64) and its .dSYM, made without Apple's SDK or linker.

    Debian's clang cross-compiles to Mach-O, lld's ld64 flavour links it (the program is
    freestanding: no libSystem, entry point _main), and llvm's dsymutil gathers the DWARF
    into a .dSYM bundle. Nothing can run it here, so the crash address is found statically:
    the brk that __builtin_trap() became, inside process_order where apply_fee is inlined.
    """
    tools = _require("clang", "dsymutil", "llvm-objdump", "llvm-symbolizer")
    source = SOURCES / "dsym" / "app.c"

    def build(out: Path) -> None:
        shutil.copy(source, out / "app.c")
        # Compiled to an object file that stays: the Mach-O linker leaves the DWARF in the
        # objects and records their paths, and dsymutil reads it from there.
        _run([tools["clang"], f"--target={DSYM_TARGET}", "-g", "-O1", "-c", "-o", "app.o", "app.c"], out)
        link = _run(
            [
                tools["clang"],
                f"--target={DSYM_TARGET}",
                "-fuse-ld=lld",
                "-nostdlib",
                "-Wl,-e,_main",
                "-Wl,-platform_version,macos,11.0,11.0",
                "-o",
                "App",
                "app.o",
            ],
            out,
            check=False,
        )
        if link.returncode != 0:
            (out / "link-failed.txt").write_text(link.stderr)
            return
        _run([tools["dsymutil"], "App", "-o", "App.dSYM"], out)
        (out / "disassembly.txt").write_text(_run([tools["llvm-objdump"], "-d", "--syms", "App"], out).stdout)

    out = _cached_build("dsym", [source], build)
    if (out / "link-failed.txt").exists():
        pytest.skip(f"clang/ld64.lld cannot link for {DSYM_TARGET}: {(out / 'link-failed.txt').read_text()[:500]}")
    disassembly = (out / "disassembly.txt").read_text()
    header = re.search(r"^([0-9a-f]+) .*__mh_execute_header$", disassembly, re.M)
    body = re.search(r"<_process_order>:\n(.*?)\n\n", disassembly, re.S)
    assert header is not None and body is not None, disassembly
    (crash,) = [int(m.group(1), 16) for m in re.finditer(r"^\s*([0-9a-f]+):.*\tbrk\t", body.group(1), re.M)]
    dwarf = out / "App.dSYM" / "Contents" / "Resources" / "DWARF" / "App"
    obj = _symbolic_object(dwarf)
    # The DWARF holds link-time addresses, so the absolute address is what it is asked.
    (expected,) = _symbolize(tools["llvm-symbolizer"], dwarf, [crash], out)
    return DsymBuild(
        binary_path=out / "App",
        dsym_path=out / "App.dSYM",
        dwarf_path=dwarf,
        debug_id=obj.debug_id.upper(),
        arch=obj.arch,
        image_addr=int(header.group(1), 16),
        crash_addr=crash,
        expected=expected,
    )
