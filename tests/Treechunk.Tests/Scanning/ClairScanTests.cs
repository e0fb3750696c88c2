using System.Text.Json.Nodes;
using Treechunk.Tests.Support;
using Treechunk.Tests.Support.Registry;

namespace Treechunk.Tests.Scanning;

/// <summary>
/// oci scan --scanner=clair against a stand-in that follows Clair v4's API (Clair itself cannot
/// be installed here), with the image in a real docker-registry that wants credentials: the
/// stand-in fetches every layer with the headers we hand it, as Clair's indexer would.
/// </summary>
public class ClairScanTests
{
    private static JsonObject Report(string hash) => JsonNode.Parse($$$"""
        {
          "manifest_hash": "{{{hash}}}",
          "packages": {
            "10": {"id": "10", "name": "libssl3", "version": "3.0.11-1~deb12u2", "kind": "binary", "arch": "amd64",
                   "source": {"id": "11", "name": "openssl", "version": "3.0.11-1~deb12u2", "kind": "source"}},
            "12": {"id": "12", "name": "bash", "version": "5.2.15-2+b2", "kind": "binary", "arch": "amd64",
                   "source": {"id": "13", "name": "bash", "version": "5.2.15-2", "kind": "source"}}
          },
          "distributions": {"1": {"id": "1", "did": "debian", "name": "Debian GNU/Linux", "version": "12 (bookworm)", "version_code_name": "bookworm", "version_id": "12", "pretty_name": "Debian GNU/Linux 12 (bookworm)"}},
          "environments": {"10": [{"package_db": "var/lib/dpkg/status", "introduced_in": "sha256:00", "distribution_id": "1"}],
                           "12": [{"package_db": "var/lib/dpkg/status", "introduced_in": "sha256:00", "distribution_id": "1"}]},
          "vulnerabilities": {
            "v1": {"id": "v1", "updater": "debian", "name": "CVE-2023-5678", "description": "Generating excessively long X9.42 DH keys is slow.\nMore.",
                   "issued": "2023-11-06T16:15:00Z", "links": "https://security-tracker.debian.org/tracker/CVE-2023-5678 https://example.org",
                   "severity": "Medium", "normalized_severity": "Medium", "fixed_in_version": "3.0.13-1~deb12u1"},
            "v2": {"id": "v2", "updater": "debian", "name": "CVE-2024-0001", "description": "A high one.", "links": "",
                   "severity": "High", "normalized_severity": "High", "fixed_in_version": ""}
          },
          "package_vulnerabilities": {"10": ["v1", "v2"]},
          "enrichments": {}
        }
        """)!.AsObject();

    [Fact]
    public void Clair_gets_the_manifest_with_fetchable_layers_and_its_report_renders_in_every_format()
    {
        using var registry = RegistryServer.StartWithHtpasswd("scanner", "s3cret");
        using var clair = new FakeClair { VulnerabilityReport = Report };
        TreechunkCli.Check("oci", "copy", ScanImages.Debian, $"docker://{registry.Host}/scan/debian:v1", "--insecure", "--username", "scanner", "--password", "s3cret");
        var inspect = JsonNode.Parse(TreechunkCli.Check("oci", "inspect", $"docker://{registry.Host}/scan/debian:v1", "--json", "--insecure", "--username", "scanner", "--password", "s3cret"))!;
        var digest = (string)inspect["manifest_digest"]!;
        var layers = inspect["manifest"]!["layers"]!.AsArray().Select(l => (string)l!["digest"]!).ToList();

        string[] Args(params string[] more) => ["oci", "scan", "--scanner=clair", "--clair-url", clair.Url, "--insecure", "--username", "scanner", "--password", "s3cret",
            "--registry", registry.Host, "--repository", "scan/debian", "--tag", "v1", .. more];
        var report = JsonNode.Parse(TreechunkCli.Check(Args("--output-format", "json")))!;
        Assert.Empty(clair.Errors);
        var submitted = clair.Submitted.Last();
        Assert.Equal(digest, (string?)submitted["hash"]);
        Assert.Equal(layers, submitted["layers"]!.AsArray().Select(l => (string)l!["hash"]!));
        // Clair could read every layer with the credentials we passed (the registry wants them).
        Assert.Equal(layers.Order(), clair.VerifiedLayers.Distinct().Order());
        Assert.All(submitted["layers"]!.AsArray(), l => Assert.StartsWith("Basic ", (string)l!["headers"]!["Authorization"]![0]!));

        Assert.Equal("clair", (string?)report["scanner"]);
        Assert.Equal(digest, (string?)report["manifest_digest"]);
        Assert.Equal("12", (string?)report["distro"]!["version_id"]);
        var vulns = report["vulnerabilities"]!.AsArray();
        Assert.Equal(["CVE-2024-0001", "CVE-2023-5678"], vulns.Select(v => (string)v!["id"]!)); // worst first
        var medium = vulns.Single(v => (string)v!["id"]! == "CVE-2023-5678")!;
        Assert.Equal("medium", (string?)medium["severity"]);
        Assert.Equal("3.0.13-1~deb12u1", (string?)medium["fixed_version"]);
        Assert.Equal("libssl3", (string?)medium["package"]);
        Assert.Equal("openssl", (string?)medium["source"]);
        Assert.Equal("Generating excessively long X9.42 DH keys is slow.", (string?)medium["summary"]);
        Assert.Equal("https://security-tracker.debian.org/tracker/CVE-2023-5678", (string?)medium["url"]);
        Assert.Null((string?)vulns.Single(v => (string)v!["id"]! == "CVE-2024-0001")!["fixed_version"]);
        Assert.Equal(2, report["packages"]!.AsArray().Count);

        JsonSchemas.AssertValid(TreechunkCli.Check(Args("--output-format", "sarif")), JsonSchemas.Sarif210);
        JsonSchemas.AssertValid(TreechunkCli.Check(Args("--output-format", "cyclonedx")), JsonSchemas.CycloneDx15);
        JsonSchemas.AssertValid(TreechunkCli.Check(Args("--output-format", "spdx")), JsonSchemas.Spdx23);
        Assert.Equal(1, TreechunkCli.Run(Args("--fail-on", "high")).ExitCode);
        Assert.Equal(0, TreechunkCli.Run(Args("--fail-on", "critical")).ExitCode);
    }

    [Fact]
    public void A_clair_url_that_is_not_clairs_api_is_reported_in_one_line()
    {
        using var registry = RegistryServer.StartAnonymous();
        using var clair = new FakeClair { VulnerabilityReport = Report };
        TreechunkCli.Check("oci", "copy", ScanImages.Debian, $"docker://{registry.Host}/scan/debian:v1", "--insecure");
        var run = TreechunkCli.Run("oci", "scan", "--scanner=clair", "--clair-url", clair.Url + "/nothing-here", "--insecure", $"docker://{registry.Host}/scan/debian:v1");
        Assert.Equal(2, run.ExitCode);
        Assert.Contains("clair submitting the manifest to the indexer: 404", run.Stderr);
        Assert.Single(run.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }
}
