"""The Apache Kafka broker's jars, resolved once by Maven from `pom.xml` into a cache folder.

Each profile of the pom pins one release; `versions()` reads them from it, so the pom is the
only place a version is written. The jars land in
`$XDG_CACHE_HOME/ocpi-puller/apache-kafka/<version>/lib` (`~/.cache` by default) and are resolved
again only when that folder is missing or the pom changed. Concurrent resolutions (two test
processes) wait for each other on a lock file.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import xml.etree.ElementTree as ElementTree
from pathlib import Path

POM = Path(__file__).with_name("pom.xml")
_NS = {"m": "http://maven.apache.org/POM/4.0.0"}


class ToolsMissing(RuntimeError):
    """Java or Maven is not installed: the Apache Kafka broker cannot be started here."""


def versions() -> dict[str, str]:
    """Release line ("4.4", "3.9") → the exact version its pom profile pins."""
    root = ElementTree.parse(POM).getroot()
    pinned: dict[str, str] = {}
    for profile in root.iterfind("m:profiles/m:profile", _NS):
        profile_id = profile.findtext("m:id", default="", namespaces=_NS)
        version = profile.findtext("m:properties/m:kafka.version", default="", namespaces=_NS)
        if profile_id.startswith("kafka-") and version:
            pinned[profile_id.removeprefix("kafka-")] = version
    return pinned


def missing_tools() -> str | None:
    """Why the broker cannot be started here (no java, no mvn), or None."""
    missing = [tool for tool in ("java", "mvn") if shutil.which(tool) is None]
    if not missing:
        return None
    return f"{' and '.join(missing)} not found on PATH (Apache Kafka runs on Java 17+ from Maven)"


def cache_root() -> Path:
    """Where resolved brokers are kept."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ocpi-puller" / "apache-kafka"


def resolve(line: str) -> Path:
    """The folder of jars of release line `line` ("4.4", "3.9"), resolved by Maven if needed."""
    pinned = versions()
    if line not in pinned:
        raise ValueError(f"no pinned Apache Kafka {line!r}; the pom pins {sorted(pinned)}")
    why = missing_tools()
    if why is not None:
        raise ToolsMissing(why)
    version = pinned[line]
    home = cache_root() / version
    home.mkdir(parents=True, exist_ok=True)
    lib, stamp = home / "lib", home / "resolved-from"
    fingerprint = hashlib.sha256(POM.read_bytes()).hexdigest()
    with open(home / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if lib.is_dir() and stamp.exists() and stamp.read_text() == fingerprint:
            return lib
        staging = home / "lib.partial"
        shutil.rmtree(staging, ignore_errors=True)
        result = subprocess.run(
            [
                "mvn",
                "-B",
                "-q",
                "-f",
                str(POM),
                "-P",
                f"kafka-{line}",
                "dependency:copy-dependencies",
                "-DincludeScope=runtime",
                f"-DoutputDirectory={staging}",
                f"-Dmaven.repo.local={Path.home() / '.m2' / 'repository'}",
            ],
            capture_output=True,
            text=True,
            check=False,
            # Maven writes nothing else; keep its target/ out of the source tree anyway.
            cwd=home,
        )
        if result.returncode != 0 or not any(staging.glob("kafka_2.13-*.jar")):
            tail = (result.stdout + result.stderr).strip().splitlines()[-5:]
            raise RuntimeError(
                f"Maven could not resolve Apache Kafka {version}: " + " | ".join(tail)
            )
        shutil.rmtree(lib, ignore_errors=True)
        staging.rename(lib)
        stamp.write_text(fingerprint)
    return lib
