using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;

namespace Treechunk.Scanning;

/// <summary>The vulnerability data a scan used.</summary>
public sealed record DatabaseSummary(string Location, int Files, int Entries, IReadOnlyList<SkippedFile> Skipped);

/// <summary>
/// One scan's result, whichever scanner produced it (builtin or Clair): the image, what it has
/// installed, and what affects it. Every output format is rendered from this alone, so the same
/// scan gives the same bytes in every run.
/// </summary>
/// <param name="Created">The image's own creation time (its config's "created"), so documents about it are reproducible.</param>
public sealed record ScanReport(string Image, string ManifestDigest, string Scanner, DateTimeOffset Created, string ToolVersion,
    PackageInventory Inventory, IReadOnlyList<Finding> Findings, DatabaseSummary? Database, IReadOnlyList<string> Notices)
{
    public Severity? Worst => Findings.Count == 0 ? null : Findings.Max(f => f.Severity);

    public IReadOnlyDictionary<Severity, int> Counts =>
        Enum.GetValues<Severity>().ToDictionary(s => s, s => Findings.Count(f => f.Severity == s));

    /// <summary>A name for the image in documents: the reference as given, without a transport prefix.</summary>
    public string ImageName => Image.Contains("://", StringComparison.Ordinal) ? Image[(Image.IndexOf("://", StringComparison.Ordinal) + 3)..] : Image;

    internal string Timestamp => Created.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>A UUID derived from the manifest digest (name-based, RFC 9562 version 8 layout), the same for the same image every time.</summary>
    internal string StableUuid(string purpose)
    {
        var h = SHA256.HashData(Encoding.UTF8.GetBytes(purpose + "\n" + ManifestDigest));
        h[6] = (byte)((h[6] & 0x0F) | 0x80);
        h[8] = (byte)((h[8] & 0x3F) | 0x80);
        var hex = Convert.ToHexStringLower(h.AsSpan(0, 16));
        return $"{hex[..8]}-{hex[8..12]}-{hex[12..16]}-{hex[16..20]}-{hex[20..32]}";
    }

    /// <summary>Our own JSON report (the --output-format json shape, documented in the README).</summary>
    public JsonObject ToJson()
    {
        var distro = Inventory.Distro;
        return new JsonObject
        {
            ["image"] = Image,
            ["manifest_digest"] = ManifestDigest,
            ["scanner"] = Scanner,
            ["distro"] = distro == null ? null : new JsonObject
            {
                ["id"] = distro.Id, ["version_id"] = distro.VersionId, ["codename"] = distro.Codename, ["pretty_name"] = distro.PrettyName,
            },
            ["package_databases"] = new JsonArray(Inventory.Databases.Select(d => (JsonNode)d).ToArray()),
            ["packages"] = new JsonArray(Inventory.Packages.Select(p => (JsonNode)new JsonObject
            {
                ["type"] = p.Type == PackageType.Deb ? "deb" : "rpm",
                ["name"] = p.Name,
                ["version"] = p.Version,
                ["arch"] = p.Architecture,
                ["source"] = p.SourceName,
                ["source_version"] = p.SourceVersion,
                ["purl"] = p.Purl(distro),
            }).ToArray()),
            ["database"] = Database == null ? null : new JsonObject
            {
                ["location"] = Database.Location,
                ["files"] = Database.Files,
                ["relevant_entries"] = Database.Entries,
                ["skipped"] = new JsonArray(Database.Skipped.Select(s => (JsonNode)new JsonObject { ["file"] = s.File, ["reason"] = s.Reason }).ToArray()),
            },
            ["vulnerabilities"] = new JsonArray(Findings.Select(f => (JsonNode)new JsonObject
            {
                ["id"] = f.Id,
                ["aliases"] = new JsonArray(f.Aliases.Select(a => (JsonNode)a).ToArray()),
                ["package"] = f.Package.Name,
                ["version"] = f.Package.Version,
                ["source"] = f.Package.SourceName,
                ["source_version"] = f.Package.SourceVersion,
                ["arch"] = f.Package.Architecture,
                ["purl"] = f.Package.Purl(distro),
                ["fixed_version"] = f.FixedVersion,
                ["severity"] = Ratings.Name(f.Severity),
                ["cvss_score"] = f.Rating?.Score,
                ["cvss_vector"] = f.Rating?.Vector,
                ["summary"] = f.Summary,
                ["url"] = f.Url,
            }).ToArray()),
            ["summary"] = new JsonObject(Counts.OrderByDescending(kv => kv.Key).Select(kv => KeyValuePair.Create(Ratings.Name(kv.Key), (JsonNode?)kv.Value))
                .Append(KeyValuePair.Create("total", (JsonNode?)Findings.Count))),
            ["notices"] = new JsonArray(Notices.Select(n => (JsonNode)n).ToArray()),
        };
    }
}
