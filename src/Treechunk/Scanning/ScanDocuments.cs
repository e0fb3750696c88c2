using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;

namespace Treechunk.Scanning;

/// <summary>
/// The standard documents a scan is written as: SPDX 2.3 and CycloneDX 1.5 SBOMs (JSON) and
/// SARIF 2.1.0 for code-scanning dashboards. Each is a function of the report alone; times and
/// identifiers come from the image, never from the clock, so the same image gives the same bytes.
/// </summary>
public static class ScanDocuments
{
    private const string SarifSchema = "https://json.schemastore.org/sarif-2.1.0.json";

    private static string ImagePurl(ScanReport r)
    {
        var name = r.ImageName;
        var at = name.IndexOf('@');
        if (at >= 0) name = name[..at];
        var slash = name.LastIndexOf('/');
        var colon = name.LastIndexOf(':');
        if (colon > slash) name = name[..colon];
        var last = name[(slash + 1)..];
        return $"pkg:oci/{Uri.EscapeDataString(last.ToLowerInvariant())}@{Uri.EscapeDataString(r.ManifestDigest)}";
    }

    /// <summary>An SPDX element id for a package: stable, unique per purl, within SPDX's [A-Za-z0-9.-] alphabet.</summary>
    private static string SpdxId(string purl) =>
        "SPDXRef-Package-" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(purl)).AsSpan(0, 8));

    public static JsonObject Spdx(ScanReport r)
    {
        var distro = r.Inventory.Distro;
        var packages = new JsonArray();
        var relationships = new JsonArray
        {
            (JsonNode)new JsonObject { ["spdxElementId"] = "SPDXRef-DOCUMENT", ["relationshipType"] = "DESCRIBES", ["relatedSpdxElement"] = "SPDXRef-Image" },
        };
        packages.Add((JsonNode)new JsonObject
        {
            ["name"] = r.ImageName,
            ["SPDXID"] = "SPDXRef-Image",
            ["versionInfo"] = r.ManifestDigest,
            ["downloadLocation"] = "NOASSERTION",
            ["filesAnalyzed"] = false,
            ["primaryPackagePurpose"] = "CONTAINER",
            ["externalRefs"] = new JsonArray(new JsonObject { ["referenceCategory"] = "PACKAGE-MANAGER", ["referenceType"] = "purl", ["referenceLocator"] = ImagePurl(r) }),
        });
        if (distro != null)
        {
            packages.Add((JsonNode)new JsonObject
            {
                ["name"] = distro.Id,
                ["SPDXID"] = "SPDXRef-OperatingSystem",
                ["versionInfo"] = distro.VersionId ?? "NOASSERTION",
                ["downloadLocation"] = "NOASSERTION",
                ["filesAnalyzed"] = false,
                ["primaryPackagePurpose"] = "OPERATING_SYSTEM",
            });
            relationships.Add((JsonNode)new JsonObject { ["spdxElementId"] = "SPDXRef-Image", ["relationshipType"] = "CONTAINS", ["relatedSpdxElement"] = "SPDXRef-OperatingSystem" });
        }
        var advisories = r.Findings.ToLookup(f => f.Package);
        var used = new HashSet<string>(StringComparer.Ordinal);
        foreach (var p in r.Inventory.Packages)
        {
            var purl = p.Purl(distro);
            var id = SpdxId(purl);
            if (!used.Add(id)) continue;
            var refs = new JsonArray(new JsonObject { ["referenceCategory"] = "PACKAGE-MANAGER", ["referenceType"] = "purl", ["referenceLocator"] = purl });
            foreach (var f in advisories[p].DistinctBy(f => f.Id))
                refs.Add((JsonNode)new JsonObject { ["referenceCategory"] = "SECURITY", ["referenceType"] = "advisory", ["referenceLocator"] = f.Url, ["comment"] = f.Id });
            var pkg = new JsonObject
            {
                ["name"] = p.Name,
                ["SPDXID"] = id,
                ["versionInfo"] = p.Version,
                ["downloadLocation"] = "NOASSERTION",
                ["filesAnalyzed"] = false,
                ["licenseConcluded"] = "NOASSERTION",
                ["licenseDeclared"] = "NOASSERTION",
                ["copyrightText"] = "NOASSERTION",
                ["primaryPackagePurpose"] = "LIBRARY",
                ["externalRefs"] = refs,
            };
            if (p.SourceName != p.Name || p.SourceVersion != p.Version) pkg["sourceInfo"] = $"built package from: {p.SourceName} {p.SourceVersion}";
            packages.Add((JsonNode)pkg);
            relationships.Add((JsonNode)new JsonObject { ["spdxElementId"] = "SPDXRef-Image", ["relationshipType"] = "CONTAINS", ["relatedSpdxElement"] = id });
        }
        return new JsonObject
        {
            ["spdxVersion"] = "SPDX-2.3",
            ["dataLicense"] = "CC0-1.0",
            ["SPDXID"] = "SPDXRef-DOCUMENT",
            ["name"] = r.ImageName,
            // A namespace unique per image and stable across runs: the manifest digest names it.
            ["documentNamespace"] = $"urn:uuid:{r.StableUuid("spdx")}",
            ["creationInfo"] = new JsonObject
            {
                ["created"] = r.Timestamp,
                ["creators"] = new JsonArray("Tool: treechunk-" + r.ToolVersion),
            },
            ["documentDescribes"] = new JsonArray("SPDXRef-Image"),
            ["packages"] = packages,
            ["relationships"] = relationships,
        };
    }

    private static string CdxSeverity(Severity s) => s switch
    {
        Severity.Critical => "critical",
        Severity.High => "high",
        Severity.Medium => "medium",
        Severity.Low => "low",
        Severity.Negligible => "info",
        _ => "unknown",
    };

    public static JsonObject CycloneDx(ScanReport r)
    {
        var distro = r.Inventory.Distro;
        var components = new JsonArray();
        if (distro != null)
            components.Add((JsonNode)new JsonObject { ["type"] = "operating-system", ["bom-ref"] = "os", ["name"] = distro.Id, ["version"] = distro.VersionId ?? "" });
        var refs = new HashSet<string>(StringComparer.Ordinal);
        foreach (var p in r.Inventory.Packages)
        {
            var purl = p.Purl(distro);
            if (!refs.Add(purl)) continue;
            var properties = new JsonArray(
                new JsonObject { ["name"] = "treechunk:package:source", ["value"] = p.SourceName },
                new JsonObject { ["name"] = "treechunk:package:source_version", ["value"] = p.SourceVersion });
            components.Add((JsonNode)new JsonObject
            {
                ["type"] = "library", ["bom-ref"] = purl, ["name"] = p.Name, ["version"] = p.Version, ["purl"] = purl, ["properties"] = properties,
            });
        }
        var vulnerabilities = new JsonArray();
        foreach (var group in r.Findings.GroupBy(f => f.Id, StringComparer.Ordinal))
        {
            var first = group.First();
            var rating = new JsonObject { ["severity"] = CdxSeverity(first.Severity) };
            if (first.Rating is { Score: { } score, Vector: { } vector, Method: var method })
            {
                rating["score"] = score;
                rating["method"] = method;
                rating["vector"] = vector;
            }
            var v = new JsonObject
            {
                ["bom-ref"] = "vuln-" + group.Key,
                ["id"] = group.Key,
                ["source"] = new JsonObject { ["name"] = r.Scanner == "builtin" ? "OSV" : r.Scanner, ["url"] = first.Url },
                ["ratings"] = new JsonArray(rating),
                ["affects"] = new JsonArray(group.Select(f => f.Package.Purl(distro)).Distinct().Select(p => (JsonNode)new JsonObject { ["ref"] = p }).ToArray()),
            };
            if (first.Summary != null) v["description"] = first.Summary;
            var fixes = group.Select(f => f.FixedVersion).OfType<string>().Distinct().ToList();
            if (fixes.Count > 0) v["recommendation"] = "Upgrade to " + string.Join(" or ", fixes);
            if (first.Aliases.Count > 0)
                v["references"] = new JsonArray(first.Aliases.Select(a => (JsonNode)new JsonObject { ["id"] = a, ["source"] = new JsonObject { ["name"] = "alias" } }).ToArray());
            vulnerabilities.Add((JsonNode)v);
        }
        return new JsonObject
        {
            ["bomFormat"] = "CycloneDX",
            ["specVersion"] = "1.5",
            ["serialNumber"] = $"urn:uuid:{r.StableUuid("cyclonedx")}",
            ["version"] = 1,
            ["metadata"] = new JsonObject
            {
                ["timestamp"] = r.Timestamp,
                ["tools"] = new JsonObject
                {
                    ["components"] = new JsonArray(new JsonObject { ["type"] = "application", ["name"] = "treechunk", ["version"] = r.ToolVersion }),
                },
                ["component"] = new JsonObject
                {
                    ["type"] = "container", ["bom-ref"] = "image", ["name"] = r.ImageName, ["version"] = r.ManifestDigest, ["purl"] = ImagePurl(r),
                },
            },
            ["components"] = components,
            ["dependencies"] = new JsonArray(new JsonObject { ["ref"] = "image", ["dependsOn"] = new JsonArray(refs.Order(StringComparer.Ordinal).Select(x => (JsonNode)x).ToArray()) }),
            ["vulnerabilities"] = vulnerabilities,
        };
    }

    private static string SarifLevel(Severity s) => s switch
    {
        Severity.Critical or Severity.High => "error",
        Severity.Medium => "warning",
        _ => "note",
    };

    /// <summary>
    /// SARIF 2.1.0: one rule per vulnerability, one result per affected package, located at the
    /// package database that lists the package (an image has no source file to point at). The
    /// security-severity property is what GitHub code scanning ranks by.
    /// </summary>
    public static JsonObject Sarif(ScanReport r)
    {
        var distro = r.Inventory.Distro;
        var rules = new JsonArray();
        var ruleIndex = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var f in r.Findings)
        {
            if (ruleIndex.ContainsKey(f.Id)) continue;
            ruleIndex[f.Id] = rules.Count;
            var score = f.Rating?.Score ?? f.Severity switch
            {
                Severity.Critical => 9.5, Severity.High => 8.0, Severity.Medium => 5.5, Severity.Low => 2.0, _ => 0.0,
            };
            rules.Add((JsonNode)new JsonObject
            {
                ["id"] = f.Id,
                ["name"] = "OsPackageVulnerability",
                ["shortDescription"] = new JsonObject { ["text"] = f.Summary ?? f.Id },
                ["fullDescription"] = new JsonObject { ["text"] = f.Summary ?? f.Id },
                ["helpUri"] = f.Url,
                ["help"] = new JsonObject { ["text"] = $"{f.Id}: {f.Summary ?? "see " + f.Url}" },
                ["defaultConfiguration"] = new JsonObject { ["level"] = SarifLevel(f.Severity) },
                ["properties"] = new JsonObject
                {
                    ["security-severity"] = Cvss3.Format(score),
                    ["tags"] = new JsonArray("vulnerability", "security", Ratings.Name(f.Severity)),
                },
            });
        }
        var database = r.Inventory.Databases.FirstOrDefault() ?? "/";
        var results = new JsonArray();
        foreach (var f in r.Findings)
        {
            var where = f.Package.Type == PackageType.Deb
                ? r.Inventory.Databases.FirstOrDefault(d => d.Contains("dpkg", StringComparison.Ordinal))
                : r.Inventory.Databases.FirstOrDefault(d => d.Contains("rpm", StringComparison.Ordinal));
            results.Add((JsonNode)new JsonObject
            {
                ["ruleId"] = f.Id,
                ["ruleIndex"] = ruleIndex[f.Id],
                ["level"] = SarifLevel(f.Severity),
                ["message"] = new JsonObject
                {
                    ["text"] = $"Package: {f.Package.Name}\nInstalled version: {f.Package.Version}\nFixed version: {f.FixedVersion ?? "none yet"}\nVulnerability {f.Id}\nSeverity: {Ratings.Name(f.Severity).ToUpperInvariant()}\nLink: {f.Url}",
                },
                ["locations"] = new JsonArray(new JsonObject
                {
                    ["physicalLocation"] = new JsonObject
                    {
                        ["artifactLocation"] = new JsonObject { ["uri"] = where ?? database, ["uriBaseId"] = "ROOTPATH" },
                        ["region"] = new JsonObject { ["startLine"] = 1 },
                    },
                    ["message"] = new JsonObject { ["text"] = $"{r.ImageName}: {f.Package.Purl(distro)}" },
                }),
                ["partialFingerprints"] = new JsonObject { ["treechunk/v1"] = $"{f.Id}:{f.Package.Name}:{f.Package.Architecture}" },
            });
        }
        return new JsonObject
        {
            ["$schema"] = SarifSchema,
            ["version"] = "2.1.0",
            ["runs"] = new JsonArray(new JsonObject
            {
                ["tool"] = new JsonObject
                {
                    ["driver"] = new JsonObject
                    {
                        ["name"] = "treechunk",
                        ["fullName"] = "treechunk oci scan",
                        ["version"] = r.ToolVersion,
                        ["informationUri"] = "https://osv.dev",
                        ["rules"] = rules,
                    },
                },
                ["originalUriBaseIds"] = new JsonObject { ["ROOTPATH"] = new JsonObject { ["uri"] = "file:///" } },
                ["results"] = results,
                ["properties"] = new JsonObject { ["image"] = r.Image, ["manifestDigest"] = r.ManifestDigest },
            }),
        };
    }
}
