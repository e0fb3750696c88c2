namespace Treechunk.Scanning;

/// <summary>A package of the image that a vulnerability affects.</summary>
/// <param name="FixedVersion">The first version that fixes it, null when no fix is known.</param>
/// <param name="Url">Where to read about it.</param>
public sealed record Finding(string Id, IReadOnlyList<string> Aliases, string? Summary, Rating? Rating,
    InstalledPackage Package, string? FixedVersion, string Url)
{
    public Severity Severity => Rating?.Severity ?? Severity.Unknown;
}

/// <summary>
/// Matches installed packages against OSV entries with each ecosystem's own version order.
/// A pure function of inventory and entries, tested on its own.
/// </summary>
public static class OsvMatcher
{
    /// <summary>The OSV ecosystem name of a distribution's os-release ID (OSV's spelling, which is not the ID's).</summary>
    public static string? EcosystemOf(Distro distro) => distro.Id switch
    {
        "debian" => "Debian",
        "ubuntu" => "Ubuntu",
        "almalinux" => "AlmaLinux",
        "rocky" => "Rocky Linux",
        "rhel" => "Red Hat",
        "opensuse-leap" or "opensuse-tumbleweed" or "opensuse" => "openSUSE",
        "sles" or "sled" or "sles_sap" => "SUSE",
        "mageia" => "Mageia",
        "photon" => "Photon OS",
        "azurelinux" => "Azure Linux",
        "fedora" => "Fedora",
        var other => other,
    };

    /// <summary>
    /// True when an OSV ecosystem ("Debian:12", "Ubuntu:22.04:LTS", "AlmaLinux:9") is the
    /// distribution's: same family, and the release it names (any ':' part) is this one, or it
    /// names none. A minor release matches its major ("9" covers VERSION_ID 9.3).
    /// </summary>
    public static bool EcosystemMatches(string ecosystem, Distro distro)
    {
        var family = EcosystemOf(distro);
        if (family == null) return false;
        var parts = ecosystem.Split(':');
        if (!string.Equals(parts[0].Trim(), family, StringComparison.OrdinalIgnoreCase)) return false;
        if (parts.Length == 1) return true;
        if (distro.VersionId is not { Length: > 0 } release) return false;
        return parts.Skip(1).Any(p => p == release || release.StartsWith(p + ".", StringComparison.Ordinal) ||
                                      (distro.Codename is { Length: > 0 } code && string.Equals(p, code, StringComparison.OrdinalIgnoreCase)));
    }

    /// <summary>The predicate that lets <see cref="OsvDatabase.Load"/> drop what cannot match this inventory.</summary>
    public static Func<string, string, bool> RelevanceFor(PackageInventory inventory)
    {
        if (inventory.Distro is not { } distro) return (_, _) => false;
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var p in inventory.Packages) { names.Add(p.SourceName); names.Add(p.Name); }
        return (ecosystem, name) => names.Contains(name) && EcosystemMatches(ecosystem, distro);
    }

    public static List<Finding> Match(PackageInventory inventory, IEnumerable<OsvEntry> entries)
    {
        var findings = new List<Finding>();
        if (inventory.Distro is not { } distro) return findings;
        var bySource = inventory.Packages.ToLookup(p => p.SourceName, StringComparer.Ordinal);
        var byName = inventory.Packages.ToLookup(p => p.Name, StringComparer.Ordinal);
        foreach (var entry in entries)
        {
            var seen = new HashSet<InstalledPackage>();
            foreach (var affected in entry.Affected)
            {
                if (!EcosystemMatches(affected.Ecosystem, distro)) continue;
                // Debian and Ubuntu advisories name source packages; rpm distributions' name
                // binaries, so an rpm also answers to its own name.
                var candidates = bySource[affected.Name].Select(p => (p, p.SourceVersion))
                    .Concat(byName[affected.Name].Where(p => p.Type == PackageType.Rpm && p.SourceName != affected.Name).Select(p => (p, p.Version)));
                foreach (var (package, version) in candidates)
                {
                    if (!seen.Add(package)) continue;
                    Comparison<string> compare = package.Type == PackageType.Deb ? DebianVersion.Compare : RpmVersion.CompareEvr;
                    if (!IsAffected(affected, version, compare, out var fixedIn)) { seen.Remove(package); continue; }
                    var rating = Ratings.Highest(entry.Ratings.Concat(affected.Severity is { } own ? [own] : []));
                    findings.Add(new Finding(entry.Id, entry.Aliases, entry.Summary ?? FirstLine(entry.Details), rating, package, fixedIn,
                        entry.References.FirstOrDefault() ?? $"https://osv.dev/vulnerability/{Uri.EscapeDataString(entry.Id)}"));
                }
            }
        }
        findings.Sort((a, b) =>
        {
            int c = b.Severity.CompareTo(a.Severity);
            if (c == 0) c = string.CompareOrdinal(a.Id, b.Id);
            if (c == 0) c = string.CompareOrdinal(a.Package.Name, b.Package.Name);
            return c != 0 ? c : string.CompareOrdinal(a.Package.Architecture, b.Package.Architecture);
        });
        return findings;
    }

    private static string? FirstLine(string? s) => s?.Split('\n', 2)[0].Trim() is { Length: > 0 } l ? l : null;

    /// <summary>
    /// OSV's evaluation: listed versions are affected; in each range, events sorted by version
    /// (introduced "0" first) switch the state as the version passes them.
    /// </summary>
    public static bool IsAffected(OsvAffected affected, string version, Comparison<string> compare, out string? fixedIn)
    {
        fixedIn = null;
        bool any = false;
        foreach (var listed in affected.Versions)
            if (compare(listed, version) == 0) any = true;
        foreach (var events in affected.Ranges)
        {
            if (!InRange(events, version, compare)) continue;
            any = true;
            // The fix to name: the lowest fixed version above the installed one.
            var fix = events.Where(e => e.Kind == "fixed" && compare(e.Version, version) > 0)
                .Select(e => e.Version).OrderBy(v => v, Comparer<string>.Create(compare)).FirstOrDefault();
            if (fix != null && (fixedIn == null || compare(fix, fixedIn) < 0)) fixedIn = fix;
        }
        return any;
    }

    internal static bool InRange(IReadOnlyList<OsvEvent> events, string version, Comparison<string> compare)
    {
        int Order(OsvEvent a, OsvEvent b)
        {
            bool az = a.Kind == "introduced" && a.Version == "0", bz = b.Kind == "introduced" && b.Version == "0";
            if (az || bz) return az == bz ? 0 : az ? -1 : 1;
            return compare(a.Version, b.Version);
        }
        var sorted = events.Select((e, i) => (e, i)).ToList();
        sorted.Sort((x, y) => Order(x.e, y.e) is var c && c != 0 ? c : x.i.CompareTo(y.i));
        bool affected = false;
        foreach (var (e, _) in sorted)
        {
            switch (e.Kind)
            {
                case "introduced" when e.Version == "0" || compare(version, e.Version) >= 0: affected = true; break;
                case "fixed" when compare(version, e.Version) >= 0: affected = false; break;
                case "last_affected" when compare(version, e.Version) > 0: affected = false; break;
                case "limit" when compare(version, e.Version) >= 0: affected = false; break;
            }
        }
        return affected;
    }
}
