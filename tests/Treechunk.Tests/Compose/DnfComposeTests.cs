using System.Text.Json.Nodes;
using Treechunk.Tests.Support;

namespace Treechunk.Tests.Compose;

/// <summary>A real dnf compose from a local rpm repository built offline by tests/fixtures/rpm-repo.sh.</summary>
public class DnfComposeTests
{
    [Fact]
    public void Rpm_owned_files_land_in_their_source_rpm_components()
    {
        using var tmp = new TempDir("dnf-compose");
        Tools.Require("dnf");
        Proc.Check("bash", Path.Join(Fixtures.RepoRoot, "tests/fixtures/rpm-repo.sh"), tmp["rpms"]);
        Directory.CreateDirectory(tmp["tf"]);
        File.Copy(tmp["rpms/local.repo"], tmp["tf/local.repo"]);
        File.WriteAllText(tmp["tf/treefile.yaml"], """
            ref: test/rpm
            repos: [local]
            releasever: "1"
            packages: [hello, tool]
            oci:
              labels:
                org.example.kind: rpm
            """);
        var r = TreechunkCli.RunWithEnv(new Dictionary<string, string> { ["SOURCE_DATE_EPOCH"] = "1700000000" },
            "compose", "build-ostree", "--repo", tmp["repo"], "--output-oci", $"oci:{tmp["image"]}", "--json", tmp["tf/treefile.yaml"]);
        Assert.True(r.ExitCode == 0, r.ToString());
        Proc.Check(Tools.Require("ostree"), "--repo=" + tmp["repo"], "fsck");

        var layers = JsonNode.Parse(r.Stdout)!["layers"]!.AsArray();
        JsonNode LayerWith(string component) => layers.Single(l => l!["components"]!.AsArray().Any(c => (string?)c == component))!;
        string Listing(JsonNode layer) => Proc.Check("tar", "-tzf", Path.Join(tmp["image"], "blobs/sha256", ((string)layer["digest"]!)[7..]));
        // hello and hello-data are both built from source rpm "greeter".
        Assert.Contains("usr/bin/hello", Listing(LayerWith("greeter")).Split('\n'));
        Assert.Contains("usr/bin/tool", Listing(LayerWith("tool")).Split('\n'));
        var inspect = JsonNode.Parse(TreechunkCli.Check("oci", "inspect", tmp["image"], "--json"))!;
        Assert.Equal("rpm", (string?)inspect["config"]!["config"]!["Labels"]!["org.example.kind"]);
    }

    [Fact]
    public void Arch_reaches_dnf_as_forcearch_and_the_image_config()
    {
        using var tmp = new TempDir("dnf-arch");
        Tools.Require("dnf");
        Proc.Check("bash", Path.Join(Fixtures.RepoRoot, "tests/fixtures/rpm-repo.sh"), tmp["rpms"]);
        // The repository is found only under the aarch64 name: dnf resolves $basearch from
        // --forcearch, so an ignored --arch fails to find any package.
        File.CreateSymbolicLink(tmp["rpms/repo-aarch64"], tmp["rpms/repo"]);
        Directory.CreateDirectory(tmp["tf"]);
        File.WriteAllText(tmp["tf/local.repo"], File.ReadAllText(tmp["rpms/local.repo"]).Replace(tmp["rpms/repo"], tmp["rpms/repo-$basearch"]));
        File.WriteAllText(tmp["tf/treefile.yaml"], """
            ref: test/rpm/${basearch}
            repos: [local]
            releasever: "1"
            packages: [hello]
            """);
        var env = new Dictionary<string, string> { ["SOURCE_DATE_EPOCH"] = "1700000000" };
        var r = TreechunkCli.RunWithEnv(env, "compose", "build-ostree", "--repo", tmp["repo"], "--output-oci", $"oci:{tmp["image"]}", "--arch", "aarch64", "--json", tmp["tf/treefile.yaml"]);
        Assert.True(r.ExitCode == 0, r.ToString());
        var config = JsonNode.Parse(TreechunkCli.Check("oci", "inspect", tmp["image"], "--json"))!["config"]!;
        Assert.Equal("arm64", (string)config["architecture"]!);
        Assert.Equal("v8", (string)config["variant"]!);
        Assert.Contains("test/rpm/aarch64", Proc.Check(Tools.Require("ostree"), "--repo=" + tmp["repo"], "refs"));
        // Without --arch the host's $basearch names a directory that is not there.
        var host = TreechunkCli.RunWithEnv(env, "compose", "build-ostree", "--repo", tmp["repo2"], "--output-oci", $"oci:{tmp["image2"]}", tmp["tf/treefile.yaml"]);
        Assert.NotEqual(0, host.ExitCode);
    }
}
