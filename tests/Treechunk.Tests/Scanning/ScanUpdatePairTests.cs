using System.Text.Json.Nodes;
using Treechunk.Tests.Support;

namespace Treechunk.Tests.Scanning;

/// <summary>
/// The acceptance scan: a real Debian update pair and advisories in osv.dev's format for source
/// packages the security suite updated. v1 (as released) is affected, v2 (after the updates) is not.
/// </summary>
public class ScanUpdatePairTests
{
    private static (JsonNode Report, ProcResult Run) Scan(string image, string db, params string[] more)
    {
        var run = TreechunkCli.Run(["oci", "scan", image, "--db", db, "--output-format", "json", .. more]);
        return (JsonNode.Parse(run.Stdout)!, run);
    }

    [Fact]
    public void An_advisory_for_an_updated_source_package_reports_v1_and_not_v2()
    {
        var (v1Tree, v2Tree) = Fixtures.UpdatePair;
        var (v1, v2) = ScanImages.UpdatePair;
        var before = ScanImages.SourceVersions(v1Tree);
        var after = ScanImages.SourceVersions(v2Tree);
        // Precondition of the fixture: the security suite moved openssl and brotli (the latter a
        // binNMU in v1: binary 1.0.9-2+b6, source 1.0.9-2).
        Assert.NotEqual(before["openssl"], after["openssl"]);
        Assert.NotEqual(before["brotli"], after["brotli"]);

        using var tmp = new TempDir("scan-pair");
        ScanImages.WriteEntry(tmp["db"], ScanImages.DebianAdvisory("DSA-9001-1", "openssl", after["openssl"], ScanImages.HighVector));
        ScanImages.WriteEntry(tmp["db"], ScanImages.DebianAdvisory("DSA-9002-1", "brotli", after["brotli"]));
        // Same package, another release's ecosystem: must not match bookworm.
        ScanImages.WriteEntry(tmp["db"], ScanImages.DebianAdvisory("DSA-9003-1", "openssl", "9.9.9-1", ecosystem: "Debian:11"));
        // Fixed long before v1: must not match either.
        ScanImages.WriteEntry(tmp["db"], ScanImages.DebianAdvisory("DSA-9004-1", "openssl", "1.1.0-1"));

        var (r1, run1) = Scan(v1, tmp["db"]);
        Assert.Equal(0, run1.ExitCode);
        var found = r1["vulnerabilities"]!.AsArray().Select(v => ((string)v!["id"]!, (string)v["package"]!)).Order().ToList();
        var expected = ScanImages.BinariesOf(v1Tree, "openssl").Select(b => ("DSA-9001-1", b))
            .Concat(ScanImages.BinariesOf(v1Tree, "brotli").Select(b => ("DSA-9002-1", b))).Order().ToList();
        Assert.Equal(expected, found);
        var libssl = r1["vulnerabilities"]!.AsArray().Single(v => (string)v!["package"]! == "libssl3")!;
        Assert.Equal(after["openssl"], (string?)libssl["fixed_version"]);
        Assert.Equal(before["openssl"], (string?)libssl["source_version"]);
        Assert.Equal("high", (string?)libssl["severity"]);
        Assert.Equal(7.4, (double?)libssl["cvss_score"]);
        // The binNMU is matched by its source version, not its binary one.
        var brotli = r1["vulnerabilities"]!.AsArray().First(v => (string)v!["id"]! == "DSA-9002-1")!;
        Assert.Equal(before["brotli"], (string?)brotli["source_version"]);
        Assert.NotEqual((string?)brotli["version"], (string?)brotli["source_version"]);
        Assert.Equal(4, (int)r1["database"]!["files"]!);

        var (r2, run2) = Scan(v2, tmp["db"]);
        Assert.Equal(0, run2.ExitCode);
        Assert.Empty(r2["vulnerabilities"]!.AsArray());
        Assert.Equal(0, (int)r2["summary"]!["total"]!);
        // v2 still has the packages: it is the versions that differ.
        Assert.Contains(r2["packages"]!.AsArray(), p => (string)p!["name"]! == "libssl3" && (string)p["source_version"]! == after["openssl"]);
    }

    [Fact]
    public void Fail_on_high_exits_1_on_v1_with_a_high_finding_and_0_on_v2()
    {
        var (_, v2Tree) = Fixtures.UpdatePair;
        var (v1, v2) = ScanImages.UpdatePair;
        var after = ScanImages.SourceVersions(v2Tree);
        using var tmp = new TempDir("scan-failon");
        ScanImages.WriteEntry(tmp["db"], ScanImages.DebianAdvisory("DSA-9001-1", "openssl", after["openssl"], ScanImages.HighVector));
        ScanImages.WriteEntry(tmp["db"], ScanImages.DebianAdvisory("DSA-9002-1", "brotli", after["brotli"], ScanImages.MediumVector));

        // Without --fail-on the same findings exit 0: the option is what makes it 1.
        Assert.Equal(0, TreechunkCli.Run("oci", "scan", v1, "--db", tmp["db"]).ExitCode);
        var high = TreechunkCli.Run("oci", "scan", v1, "--db", tmp["db"], "--fail-on", "high");
        Assert.Equal(1, high.ExitCode);
        Assert.Contains("at or above high", high.Stderr);
        Assert.Contains("DSA-9001-1", high.Stdout);
        // Medium is below critical: the gate holds.
        Assert.Equal(0, TreechunkCli.Run("oci", "scan", v1, "--db", tmp["db"], "--fail-on", "critical").ExitCode);
        Assert.Equal(1, TreechunkCli.Run("oci", "scan", v1, "--db", tmp["db"], "--fail-on", "medium").ExitCode);
        Assert.Equal(0, TreechunkCli.Run("oci", "scan", v2, "--db", tmp["db"], "--fail-on", "low").ExitCode);
    }

    [Fact]
    public void Osv_zip_as_osv_dev_publishes_it_gives_the_same_findings_as_the_directory()
    {
        var (_, v2Tree) = Fixtures.UpdatePair;
        var (v1, _) = ScanImages.UpdatePair;
        var after = ScanImages.SourceVersions(v2Tree);
        using var tmp = new TempDir("scan-zip");
        ScanImages.WriteEntry(tmp["db"], ScanImages.DebianAdvisory("DSA-9001-1", "openssl", after["openssl"]));
        ScanImages.WriteEntry(tmp["db"], ScanImages.DebianAdvisory("DSA-9002-1", "brotli", after["brotli"]));
        Proc.Check("python3", "-c", "import sys, zipfile, os\nwith zipfile.ZipFile(sys.argv[2], 'w') as z:\n    for f in sorted(os.listdir(sys.argv[1])): z.write(os.path.join(sys.argv[1], f), f)", tmp["db"], tmp["all.zip"]);
        var fromDir = Scan(v1, tmp["db"]).Report["vulnerabilities"]!.ToJsonString();
        var fromZip = Scan(v1, tmp["all.zip"]).Report;
        Assert.Equal(fromDir, fromZip["vulnerabilities"]!.ToJsonString());
        Assert.NotEmpty(fromZip["vulnerabilities"]!.AsArray());
        Assert.Equal(2, (int)fromZip["database"]!["files"]!);
    }
}
