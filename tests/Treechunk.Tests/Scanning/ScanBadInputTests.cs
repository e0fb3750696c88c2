using System.Text.Json.Nodes;
using Treechunk.Tests.Support;

namespace Treechunk.Tests.Scanning;

/// <summary>Bad input to oci scan: one clear line on stderr, a meaningful exit code, no half-written report.</summary>
public class ScanBadInputTests
{
    private static void OneLineError(ProcResult run, int exit, string text)
    {
        Assert.True(run.ExitCode == exit, run.ToString());
        var lines = run.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines, l => l.StartsWith("treechunk: error: "));
        Assert.Contains(text, run.Stderr);
        Assert.DoesNotContain("   at ", run.Stderr);
    }

    private static string EmptyImage(TempDir tmp)
    {
        // A tree with files but no package database and no os-release.
        CraftedImage.Write(tmp["img"], CraftedImage.PythonTar("add(t, 'usr/bin/hello', b'#!/bin/sh\\necho hi\\n', mode=0o755)\nadd(t, 'etc/motd', b'hi')"));
        return $"oci:{tmp["img"]}:latest";
    }

    [Fact]
    public void An_image_with_no_package_database_gives_a_notice_and_an_empty_sbom()
    {
        using var tmp = new TempDir("scan-nodb");
        var image = EmptyImage(tmp);
        var run = TreechunkCli.Run("oci", "scan", image, "--output-format", "spdx");
        Assert.Equal(0, run.ExitCode);
        Assert.Contains("notice: no package database in the image", run.Stderr);
        JsonSchemas.AssertValid(run.Stdout, JsonSchemas.Spdx23);
        var spdx = JsonNode.Parse(run.Stdout)!;
        Assert.DoesNotContain(spdx["packages"]!.AsArray(), p => ((string)p!["SPDXID"]!).StartsWith("SPDXRef-Package-"));
        var cdx = TreechunkCli.Check("oci", "scan", image, "--output-format", "cyclonedx");
        JsonSchemas.AssertValid(cdx, JsonSchemas.CycloneDx15);
        Assert.Empty(JsonNode.Parse(cdx)!["components"]!.AsArray());
        var json = JsonNode.Parse(TreechunkCli.Check("oci", "scan", image, "--json"))!;
        Assert.Empty(json["packages"]!.AsArray());
        Assert.Empty(json["package_databases"]!.AsArray());
        Assert.Null(json["distro"]);
    }

    [Fact]
    public void A_malformed_osv_file_is_named_skipped_and_reported_and_the_rest_still_matches()
    {
        using var tmp = new TempDir("scan-badosv");
        var sources = ScanImages.SourceVersions(Fixtures.DebianTree);
        ScanImages.WriteEntry(tmp["db"], ScanImages.DebianAdvisory("DSA-9200-1", "bash", sources["bash"] + "+deb12u99"));
        File.WriteAllText(tmp["db/DSA-broken.json"], "{\"id\": \"DSA-broken\", \"affected\": [");
        File.WriteAllText(tmp["db/no-id.json"], "{\"affected\": []}");
        var run = TreechunkCli.Run("oci", "scan", ScanImages.Debian, "--db", tmp["db"], "--json");
        Assert.Equal(0, run.ExitCode);
        Assert.Contains("skipping malformed OSV file DSA-broken.json", run.Stderr);
        Assert.Contains("skipping malformed OSV file no-id.json", run.Stderr);
        var report = JsonNode.Parse(run.Stdout)!;
        var skipped = report["database"]!["skipped"]!.AsArray().Select(s => (string)s!["file"]!).Order().ToList();
        Assert.Equal(["DSA-broken.json", "no-id.json"], skipped);
        Assert.Equal(3, (int)report["database"]!["files"]!);
        Assert.Contains(report["vulnerabilities"]!.AsArray(), v => (string)v!["id"]! == "DSA-9200-1");
        Assert.Contains(report["notices"]!.AsArray(), n => ((string)n!).Contains("2 of 3 OSV files were malformed"));
    }

    [Fact]
    public void Unknown_scanner_format_and_severity_are_bad_input()
    {
        OneLineError(TreechunkCli.Run("oci", "scan", ScanImages.Debian, "--scanner", "snyk"), 2, "unknown --scanner 'snyk'");
        OneLineError(TreechunkCli.Run("oci", "scan", ScanImages.Debian, "--output-format", "xml"), 2, "unknown --output-format 'xml'");
        OneLineError(TreechunkCli.Run("oci", "scan", ScanImages.Debian, "--fail-on", "severe"), 2, "unknown severity 'severe'");
        OneLineError(TreechunkCli.Run("oci", "scan", ScanImages.Debian, "--db", "/nonexistent/osv"), 2, "--db /nonexistent/osv: no such file or directory");
        OneLineError(TreechunkCli.Run("oci", "scan"), 2, "name the image");
        OneLineError(TreechunkCli.Run("oci", "scan", "oci:/nonexistent/layout:v1"), 2, "/nonexistent/layout");
    }

    [Fact]
    public void A_report_that_cannot_be_written_leaves_no_file()
    {
        using var tmp = new TempDir("scan-outdir");
        OneLineError(TreechunkCli.Run("oci", "scan", ScanImages.Debian, "--output-file", tmp["missing/dir/report.json"]), 2, "does not exist");
        Directory.CreateDirectory(tmp["adir"]);
        OneLineError(TreechunkCli.Run("oci", "scan", ScanImages.Debian, "--output-file", tmp["adir"]), 2, "is a directory");
        Assert.Empty(Directory.GetFileSystemEntries(tmp["adir"]));
    }

    [Fact]
    public void An_unreachable_clair_is_an_environment_error()
    {
        using var registry = Support.Registry.RegistryServer.StartAnonymous();
        TreechunkCli.Check("oci", "copy", ScanImages.Debian, $"docker://{registry.Host}/scan/debian:v1", "--insecure");
        var port = Support.Registry.RegistryServer.FreeLoopbackPort();
        var run = TreechunkCli.Run("oci", "scan", "--scanner=clair", "--clair-url", $"http://127.0.0.1:{port}", "--insecure",
            "--registry", registry.Host, "--repository", "scan/debian", "--tag", "v1");
        OneLineError(run, 3, $"cannot reach Clair at http://127.0.0.1:{port}");
    }

    [Fact]
    public void Clair_refuses_an_image_that_is_not_in_a_registry()
    {
        OneLineError(TreechunkCli.Run("oci", "scan", ScanImages.Debian, "--scanner", "clair", "--clair-url", "http://127.0.0.1:9"), 2, "is not in a registry");
        OneLineError(TreechunkCli.Run("oci", "scan", ScanImages.Debian, "--scanner", "clair", "--clair-url", "ftp://x"), 2, "is not an http(s) URL");
    }

    [Fact]
    public void Trivy_and_grype_that_are_not_installed_are_environment_errors()
    {
        using var tmp = new TempDir("scan-notool");
        Directory.CreateDirectory(tmp["bin"]);
        var env = new Dictionary<string, string> { ["PATH"] = tmp["bin"] };
        foreach (var tool in new[] { "trivy", "grype" })
        {
            var run = TreechunkCli.RunWithEnv(env, "oci", "scan", ScanImages.Debian, "--scanner", tool);
            OneLineError(run, 3, $"{tool} is not installed");
        }
    }
}
