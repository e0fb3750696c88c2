using System.Text.Json.Nodes;
using Treechunk.Tests.Support;

namespace Treechunk.Tests.Scanning;

/// <summary>
/// Input images for the scan tests, built once per test run with our own build-chunked-oci from
/// the cached real trees (inputs only: no test asserts on anything another test left).
/// </summary>
public static class ScanImages
{
    private static readonly string Root = CreateRoot();

    private static string CreateRoot()
    {
        var dir = Path.Join(Path.GetTempPath(), "treechunk-scan-images-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(dir);
        AppDomain.CurrentDomain.ProcessExit += (_, _) => { try { Directory.Delete(dir, true); } catch (IOException) { } };
        return dir;
    }

    private static string Build(string tree, string name)
    {
        var layout = Path.Join(Root, name);
        TreechunkCli.Check("compose", "build-chunked-oci", "--rootfs", tree, "--output", $"oci:{layout}:v1");
        return $"oci:{layout}:v1";
    }

    private static readonly Lazy<string> DebianLazy = new(() => Build(Fixtures.DebianTree, "debian"));
    private static readonly Lazy<(string V1, string V2)> PairLazy = new(() =>
        (Build(Fixtures.UpdatePair.V1, "pair-v1"), Build(Fixtures.UpdatePair.V2, "pair-v2")));

    /// <summary>oci:… of the Debian test tree, chunked by package.</summary>
    public static string Debian => DebianLazy.Value;

    /// <summary>oci:… of the update pair's v1 (bookworm as released) and v2 (after the security updates).</summary>
    public static (string V1, string V2) UpdatePair => PairLazy.Value;

    /// <summary>Source package name to source version, read from a tree's dpkg status with dpkg-query's view of it.</summary>
    public static Dictionary<string, string> SourceVersions(string tree)
    {
        var output = Proc.Check(Tools.Require("dpkg-query"), "--admindir", Path.Join(tree, "var/lib/dpkg"), "-W", "-f", "${source:Package} ${source:Version}\n");
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var line in output.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var parts = line.Split(' ');
            result[parts[0]] = parts[1];
        }
        return result;
    }

    /// <summary>Binary packages built from a source, with dpkg-query.</summary>
    public static List<string> BinariesOf(string tree, string source) =>
        Proc.Check(Tools.Require("dpkg-query"), "--admindir", Path.Join(tree, "var/lib/dpkg"), "-W", "-f", "${source:Package} ${Package}\n")
            .Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split(' ')).Where(p => p[0] == source).Select(p => p[1]).Order(StringComparer.Ordinal).ToList();

    /// <summary>
    /// An OSV entry in the shape osv.dev publishes Debian's security advisories (DSA): the
    /// source package in ecosystem Debian:12, an ECOSYSTEM range fixed in <paramref name="fixedIn"/>.
    /// </summary>
    public static JsonObject DebianAdvisory(string id, string source, string fixedIn, string? cvss = null, string ecosystem = "Debian:12")
    {
        var entry = new JsonObject
        {
            ["schema_version"] = "1.6.0",
            ["id"] = id,
            ["summary"] = $"{source} - security update",
            ["details"] = $"Several vulnerabilities were discovered in {source}.",
            ["modified"] = "2025-10-01T12:00:00Z",
            ["published"] = "2025-09-30T00:00:00Z",
            ["related"] = new JsonArray("CVE-2025-0001"),
            ["affected"] = new JsonArray(new JsonObject
            {
                ["package"] = new JsonObject { ["ecosystem"] = ecosystem, ["name"] = source, ["purl"] = $"pkg:deb/debian/{source}?arch=source" },
                ["ranges"] = new JsonArray(new JsonObject
                {
                    ["type"] = "ECOSYSTEM",
                    ["events"] = new JsonArray(new JsonObject { ["introduced"] = "0" }, new JsonObject { ["fixed"] = fixedIn }),
                }),
            }),
            ["references"] = new JsonArray(new JsonObject { ["type"] = "ADVISORY", ["url"] = $"https://security-tracker.debian.org/tracker/{id}" }),
        };
        if (cvss != null) entry["severity"] = new JsonArray(new JsonObject { ["type"] = "CVSS_V3", ["score"] = cvss });
        return entry;
    }

    public static void WriteEntry(string dir, JsonObject entry)
    {
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Join(dir, (string)entry["id"]! + ".json"), entry.ToJsonString());
    }

    public const string HighVector = "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:N"; // 7.4
    public const string MediumVector = "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N"; // 5.5
}
