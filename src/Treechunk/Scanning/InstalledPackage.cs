namespace Treechunk.Scanning;

/// <summary>The package managers whose databases a scan reads.</summary>
public enum PackageType
{
    Deb,
    Rpm,
}

/// <summary>
/// One installed binary package as its package manager recorded it. Vulnerability data of the
/// distributions names source packages (a Debian advisory for openssl covers libssl3), so the
/// source name and version travel with every binary.
/// </summary>
/// <param name="Version">The full version: dpkg's <c>[epoch:]upstream[-revision]</c>, rpm's <c>[epoch:]version-release</c>.</param>
/// <param name="SourceVersion">The source package's version (differs from <paramref name="Version"/> for binNMUs and some rpm subpackages).</param>
public sealed record InstalledPackage(
    PackageType Type, string Name, string Version, string Architecture, string SourceName, string SourceVersion)
{
    /// <summary>
    /// The package URL (purl spec, types deb and rpm): <c>pkg:deb/debian/libssl3@3.0.11-1~deb12u2?arch=amd64&amp;distro=debian-12</c>.
    /// The namespace is the distribution's os-release ID, the distro qualifier ID-VERSION_ID.
    /// </summary>
    public string Purl(Distro? distro)
    {
        var type = Type == PackageType.Deb ? "deb" : "rpm";
        var ns = distro?.Id is { Length: > 0 } id ? id : Type == PackageType.Deb ? "debian" : "unknown";
        var version = Version;
        string? epoch = null;
        if (Type == PackageType.Rpm && version.IndexOf(':') is var colon and > 0)
        {
            // purl's rpm type carries the epoch as a qualifier, not in the version.
            epoch = version[..colon];
            version = version[(colon + 1)..];
        }
        var qualifiers = new List<string>();
        if (Architecture.Length > 0) qualifiers.Add("arch=" + Escape(Architecture));
        if (distro?.VersionId is { Length: > 0 } v) qualifiers.Add("distro=" + Escape($"{ns}-{v}"));
        if (epoch != null) qualifiers.Add("epoch=" + Escape(epoch));
        // Qualifiers are sorted by key (purl's canonical form).
        qualifiers.Sort(StringComparer.Ordinal);
        var purl = $"pkg:{type}/{Escape(ns.ToLowerInvariant())}/{Escape(Name)}@{Escape(version)}";
        return qualifiers.Count > 0 ? purl + "?" + string.Join('&', qualifiers) : purl;
    }

    /// <summary>purl percent-encoding: everything but unreserved characters and the few purl leaves bare in values.</summary>
    private static string Escape(string s)
    {
        var sb = new System.Text.StringBuilder(s.Length);
        foreach (var b in System.Text.Encoding.UTF8.GetBytes(s))
        {
            var c = (char)b;
            if (char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_' or '~' or '+') sb.Append(c);
            else sb.Append('%').Append(b.ToString("X2"));
        }
        return sb.ToString();
    }
}

/// <summary>The distribution an image says it is, from os-release.</summary>
public sealed record Distro(string Id, string? VersionId, string? Codename, string? PrettyName, IReadOnlyList<string> IdLike)
{
    /// <summary>Parses os-release(5): KEY=value lines, values optionally quoted with shell escapes.</summary>
    public static Distro? Parse(string text)
    {
        var fields = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var rawLine in text.Split('\n'))
        {
            var line = rawLine.Trim();
            if (line.Length == 0 || line[0] == '#') continue;
            var eq = line.IndexOf('=');
            if (eq <= 0) continue;
            var value = line[(eq + 1)..];
            if (value.Length >= 2 && (value[0] is '"' or '\'') && value[^1] == value[0])
            {
                value = value[1..^1];
                if (line[eq + 1] == '"') value = value.Replace("\\\"", "\"").Replace("\\$", "$").Replace("\\`", "`").Replace("\\\\", "\\");
            }
            fields[line[..eq]] = value;
        }
        if (!fields.TryGetValue("ID", out var id) || id.Length == 0) return null;
        return new Distro(id, fields.GetValueOrDefault("VERSION_ID"), fields.GetValueOrDefault("VERSION_CODENAME"),
            fields.GetValueOrDefault("PRETTY_NAME"),
            fields.GetValueOrDefault("ID_LIKE", "").Split(' ', StringSplitOptions.RemoveEmptyEntries));
    }
}

/// <summary>What an image has installed, and where that was read from.</summary>
/// <param name="Databases">Tree paths of the package databases read (e.g. var/lib/dpkg/status).</param>
/// <param name="Notices">Things the user should know about the inventory (no database, unsupported rpm backend).</param>
public sealed record PackageInventory(Distro? Distro, IReadOnlyList<InstalledPackage> Packages, IReadOnlyList<string> Databases, IReadOnlyList<string> Notices);
