using System.Text.Json.Nodes;
using Treechunk.Tests.Support;

namespace Treechunk.Tests.Scanning;

/// <summary>
/// trivy and grype cannot be installed here (neither is in Debian 12), so these tests put a
/// stand-in of each on PATH that records how it was called and keeps the archive it was given;
/// the archive itself is checked with skopeo, the real peer.
/// </summary>
public class ExternalScannerTests
{
    private static Dictionary<string, string> StubOnPath(TempDir tmp, string tool, int exitCode)
    {
        Directory.CreateDirectory(tmp["bin"]);
        var stub = tmp[$"bin/{tool}"];
        File.WriteAllText(stub, $$"""
            #!/bin/sh
            printf '%s\n' "$@" > '{{tmp["args"]}}'
            env | grep '^GRYPE_' > '{{tmp["env"]}}' || true
            for a in "$@"; do
              case "$a" in
                docker-archive:*) cp "${a#docker-archive:}" '{{tmp["seen.tar"]}}' ;;
              esac
            done
            prev=""
            for a in "$@"; do
              if [ "$prev" = "--input" ]; then cp "$a" '{{tmp["seen.tar"]}}'; fi
              prev="$a"
            done
            echo '{"from": "{{tool}}"}'
            exit {{exitCode}}
            """);
        File.SetUnixFileMode(stub, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return new Dictionary<string, string> { ["PATH"] = tmp["bin"] + ":" + Environment.GetEnvironmentVariable("PATH") };
    }

    private static void TheArchiveIsTheImage(TempDir tmp)
    {
        var ours = JsonNode.Parse(TreechunkCli.Check("oci", "inspect", ScanImages.Debian, "--json"))!;
        var theirs = JsonNode.Parse(Proc.Check(Tools.Require("skopeo"), "inspect", "--config", $"docker-archive:{tmp["seen.tar"]}"))!;
        Assert.Equal(ours["config"]!["rootfs"]!["diff_ids"]!.ToJsonString(), theirs["rootfs"]!["diff_ids"]!.ToJsonString());
    }

    [Fact]
    public void Trivy_gets_a_docker_archive_of_the_image_and_our_options_in_its_terms()
    {
        using var tmp = new TempDir("scan-trivy");
        var env = StubOnPath(tmp, "trivy", 0);
        var stdout = TreechunkCli.Check(env, "oci", "scan", ScanImages.Debian, "--scanner", "trivy", "--output-format", "cyclonedx", "--fail-on", "high", "--db", tmp.Path);
        Assert.Contains("{\"from\": \"trivy\"}", stdout);
        var args = File.ReadAllLines(tmp["args"]);
        Assert.Equal("image", args[0]);
        Assert.Equal("cyclonedx", args[Array.IndexOf(args, "--format") + 1]);
        Assert.Equal("HIGH,CRITICAL", args[Array.IndexOf(args, "--severity") + 1]);
        Assert.Equal("1", args[Array.IndexOf(args, "--exit-code") + 1]);
        Assert.Equal(tmp.Path, args[Array.IndexOf(args, "--cache-dir") + 1]);
        TheArchiveIsTheImage(tmp);

        // Without --fail-on nothing asks trivy to gate.
        TreechunkCli.Check(env, "oci", "scan", ScanImages.Debian, "--scanner", "trivy");
        args = File.ReadAllLines(tmp["args"]);
        Assert.DoesNotContain("--exit-code", args);
        Assert.Equal("table", args[Array.IndexOf(args, "--format") + 1]);
    }

    [Fact]
    public void Grype_gets_a_docker_archive_and_its_gate_is_our_exit_code()
    {
        using var tmp = new TempDir("scan-grype");
        var env = StubOnPath(tmp, "grype", 1);
        var run = TreechunkCli.RunWithEnv(env, "oci", "scan", ScanImages.Debian, "--scanner", "grype", "--output-format", "spdx", "--fail-on", "medium",
            "--output-file", tmp["sbom.json"], "--db", tmp["grype-db"]);
        Assert.Equal(1, run.ExitCode);
        var args = File.ReadAllLines(tmp["args"]);
        Assert.StartsWith("docker-archive:", args[0]);
        Assert.Equal("spdx-json", args[Array.IndexOf(args, "-o") + 1]);
        Assert.Equal("medium", args[Array.IndexOf(args, "--fail-on") + 1]);
        Assert.Equal(tmp["sbom.json"], args[Array.IndexOf(args, "--file") + 1]);
        Assert.Contains($"GRYPE_DB_CACHE_DIR={tmp["grype-db"]}", File.ReadAllText(tmp["env"]));
        TheArchiveIsTheImage(tmp);
    }

    [Fact]
    public void A_scanner_that_crashes_is_an_environment_error()
    {
        using var tmp = new TempDir("scan-crash");
        var env = StubOnPath(tmp, "trivy", 7);
        var run = TreechunkCli.RunWithEnv(env, "oci", "scan", ScanImages.Debian, "--scanner", "trivy");
        Assert.Equal(3, run.ExitCode);
        Assert.Contains("trivy failed (exit 7)", run.Stderr);
    }
}
