using System.Text.Json.Nodes;
using Treechunk.Tests.Support;

namespace Treechunk.Tests.Scanning;

/// <summary>Every output format of a builtin scan of the Debian test image: fields, published schemas, reproducibility.</summary>
public class ScanOutputTests
{
    /// <summary>A database with one high advisory for bash and one unscored for the source of libc6.</summary>
    private static string Database(TempDir tmp)
    {
        var sources = ScanImages.SourceVersions(Fixtures.DebianTree);
        ScanImages.WriteEntry(tmp["db"], ScanImages.DebianAdvisory("DSA-9100-1", "bash", sources["bash"] + "+deb12u99", ScanImages.HighVector));
        ScanImages.WriteEntry(tmp["db"], ScanImages.DebianAdvisory("DSA-9101-1", "glibc", sources["glibc"] + "+deb12u99"));
        return tmp["db"];
    }

    private static string Scan(string db, string format) =>
        TreechunkCli.Check("oci", "scan", ScanImages.Debian, "--db", db, "--output-format", format);

    [Fact]
    public void Sarif_has_the_required_fields_and_validates_against_the_published_schema()
    {
        using var tmp = new TempDir("scan-sarif");
        var text = Scan(Database(tmp), "sarif");
        JsonSchemas.AssertValid(text, JsonSchemas.Sarif210);
        var sarif = JsonNode.Parse(text)!;
        Assert.Equal("2.1.0", (string?)sarif["version"]);
        var run = sarif["runs"]!.AsArray().Single()!;
        Assert.Equal("treechunk", (string?)run["tool"]!["driver"]!["name"]);
        var rules = run["tool"]!["driver"]!["rules"]!.AsArray();
        Assert.Equal(["DSA-9100-1", "DSA-9101-1"], rules.Select(r => (string)r!["id"]!).Order());
        Assert.Equal("7.4", (string?)rules.Single(r => (string)r!["id"]! == "DSA-9100-1")!["properties"]!["security-severity"]);
        var results = run["results"]!.AsArray();
        var bash = results.Single(r => (string)r!["ruleId"]! == "DSA-9100-1")!;
        Assert.Equal("error", (string?)bash["level"]);
        Assert.Contains("Package: bash", (string)bash["message"]!["text"]!);
        Assert.Equal("var/lib/dpkg/status", (string?)bash["locations"]![0]!["physicalLocation"]!["artifactLocation"]!["uri"]);
        Assert.Equal("DSA-9100-1", (string?)rules[(int)bash["ruleIndex"]!]!["id"]);
        // Every binary of glibc is a result of the unscored advisory, as a note.
        var glibc = ScanImages.BinariesOf(Fixtures.DebianTree, "glibc");
        Assert.True(glibc.Count >= 2);
        Assert.Equal(glibc, results.Where(r => (string)r!["ruleId"]! == "DSA-9101-1").Select(r => ((string)r!["message"]!["text"]!).Split('\n')[0]["Package: ".Length..]).Order());
        Assert.All(results.Where(r => (string)r!["ruleId"]! == "DSA-9101-1"), r => Assert.Equal("note", (string?)r!["level"]));
    }

    [Fact]
    public void Spdx_sbom_validates_against_the_spdx_2_3_schema_and_lists_every_package_with_its_purl()
    {
        using var tmp = new TempDir("scan-spdx");
        var db = Database(tmp);
        var text = Scan(db, "spdx");
        JsonSchemas.AssertValid(text, JsonSchemas.Spdx23);
        var spdx = JsonNode.Parse(text)!;
        Assert.Equal("SPDX-2.3", (string?)spdx["spdxVersion"]);
        var report = JsonNode.Parse(Scan(db, "json"))!;
        var expected = report["packages"]!.AsArray().Select(p => (string)p!["purl"]!).Order().ToList();
        var purls = spdx["packages"]!.AsArray()
            .SelectMany(p => p!["externalRefs"]?.AsArray() ?? [])
            .Where(r => (string)r!["referenceType"]! == "purl" && ((string)r["referenceLocator"]!).StartsWith("pkg:deb/"))
            .Select(r => (string)r!["referenceLocator"]!).Order().ToList();
        Assert.Equal(expected, purls);
        // dpkg-query agrees on what is installed.
        var installed = Proc.Check(Tools.Require("dpkg-query"), "--admindir", Path.Join(Fixtures.DebianTree, "var/lib/dpkg"), "-W", "-f", "${Package} ${Version}\n")
            .Split('\n', StringSplitOptions.RemoveEmptyEntries).Order().ToList();
        var listed = spdx["packages"]!.AsArray().Where(p => ((string)p!["SPDXID"]!).StartsWith("SPDXRef-Package-"))
            .Select(p => $"{p!["name"]} {p["versionInfo"]}").Order().ToList();
        Assert.Equal(installed, listed);
        Assert.Contains(purls, p => p.StartsWith("pkg:deb/debian/bash@") && p.Contains("distro=debian-12"));
        var bash = spdx["packages"]!.AsArray().Single(p => (string)p!["name"]! == "bash")!;
        Assert.Contains(bash["externalRefs"]!.AsArray(), r => (string)r!["referenceCategory"]! == "SECURITY" && (string?)r["comment"] == "DSA-9100-1");
    }

    [Fact]
    public void CycloneDx_sbom_validates_against_the_cyclonedx_1_5_schema_and_carries_the_vulnerabilities()
    {
        using var tmp = new TempDir("scan-cdx");
        var text = Scan(Database(tmp), "cyclonedx");
        JsonSchemas.AssertValid(text, JsonSchemas.CycloneDx15);
        var bom = JsonNode.Parse(text)!;
        Assert.Equal("1.5", (string?)bom["specVersion"]);
        var components = bom["components"]!.AsArray();
        Assert.Contains(components, c => (string)c!["type"]! == "operating-system" && (string)c["name"]! == "debian");
        var libraries = components.Where(c => (string)c!["type"]! == "library").ToList();
        Assert.Equal(libraries.Select(c => (string)c!["purl"]!), libraries.Select(c => (string)c!["bom-ref"]!));
        var vuln = bom["vulnerabilities"]!.AsArray().Single(v => (string)v!["id"]! == "DSA-9100-1")!;
        Assert.Equal("high", (string?)vuln["ratings"]![0]!["severity"]);
        Assert.Equal(7.4, (double?)vuln["ratings"]![0]!["score"]);
        var affects = vuln["affects"]!.AsArray().Select(a => (string)a!["ref"]!).ToList();
        Assert.Single(affects);
        Assert.StartsWith("pkg:deb/debian/bash@", affects[0]);
        Assert.Contains(affects[0], libraries.Select(c => (string)c!["bom-ref"]!));
    }

    [Fact]
    public void The_same_image_gives_the_same_bytes_in_every_format()
    {
        using var tmp = new TempDir("scan-repro");
        var db = Database(tmp);
        foreach (var format in new[] { "json", "sarif", "spdx", "cyclonedx", "table" })
            Assert.Equal(Scan(db, format), Scan(db, format));
        // A different image gets a different document identity.
        var other = JsonNode.Parse(TreechunkCli.Check("oci", "scan", ScanImages.UpdatePair.V1, "--output-format", "spdx"))!;
        Assert.NotEqual((string?)JsonNode.Parse(Scan(db, "spdx"))!["documentNamespace"], (string?)other["documentNamespace"]);
    }

    [Fact]
    public void Output_file_holds_the_report_and_stdout_a_summary()
    {
        using var tmp = new TempDir("scan-outfile");
        var db = Database(tmp);
        var stdout = TreechunkCli.Check("oci", "scan", "--output-format=json", $"--output-file={tmp["vulnerabilities.json"]}", ScanImages.Debian, "--db", db);
        Assert.Equal(Scan(db, "json"), File.ReadAllText(tmp["vulnerabilities.json"]));
        Assert.Contains("vulnerabilities.json: json report", stdout);
        Assert.DoesNotContain("\"vulnerabilities\"", stdout);
        Assert.Empty(Directory.GetFiles(tmp.Path, ".tmp*"));
    }

    [Fact]
    public void Table_lists_findings_worst_first_and_json_flag_means_json()
    {
        using var tmp = new TempDir("scan-table");
        var db = Database(tmp);
        var table = Scan(db, "table");
        Assert.Contains("Debian GNU/Linux 12 (bookworm)", table);
        var lines = table.Split('\n');
        var first = Array.FindIndex(lines, l => l.Contains("DSA-9100-1"));
        var second = Array.FindIndex(lines, l => l.Contains("DSA-9101-1"));
        Assert.True(first > 0 && second > first, table);
        Assert.Contains("HIGH", lines[first]);
        Assert.Equal(Scan(db, "json"), TreechunkCli.Check("oci", "scan", ScanImages.Debian, "--db", db, "--json"));
    }

    [Fact]
    public void Without_a_database_packages_are_listed_and_the_command_says_nothing_is_matched()
    {
        var run = TreechunkCli.Run("oci", "scan", ScanImages.Debian, "--output-format", "json");
        Assert.Equal(0, run.ExitCode);
        var report = JsonNode.Parse(run.Stdout)!;
        Assert.Null(report["database"]);
        Assert.True(report["packages"]!.AsArray().Count > 50);
        Assert.Contains("no vulnerability data given (--db)", run.Stderr);
    }
}
