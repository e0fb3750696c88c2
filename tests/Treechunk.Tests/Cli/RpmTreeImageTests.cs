using System.Text.Json.Nodes;
using Treechunk.Tests.Support;

namespace Treechunk.Tests.CommandLine;

/// <summary>An rpm tree (rpm --initdb + offline rpmbuild packages) chunks by source rpm end to end.</summary>
public class RpmTreeImageTests
{
    [Fact]
    public void Rpm_owned_files_land_in_their_source_rpm_components()
    {
        using var tmp = new TempDir("rpm-image");
        Proc.Check("bash", Path.Join(Fixtures.RepoRoot, "tests/fixtures/rpm-tree.sh"), tmp["root"]);
        var build = JsonNode.Parse(TreechunkCli.Check("compose", "build-chunked-oci", "--rootfs", tmp["root"], "--output", $"oci:{tmp["image"]}", "--json"))!;
        Assert.Equal("rpm", (string?)build["package_database"]);
        Assert.Equal("package", (string?)build["algorithm"]);

        var chunks = JsonNode.Parse(TreechunkCli.Check("oci", "chunk", "list", tmp["image"], "--json"))!.AsArray();
        var names = chunks.SelectMany(c => c!["components"]!.AsArray()).Select(c => (string)c!["name"]!).ToList();
        Assert.Contains("hello", names);
        Assert.Contains("tool", names);
        Assert.DoesNotContain("hello-libs", names); // a binary of source rpm hello, not a component of its own

        var toolLayer = build["layers"]!.AsArray().Single(l => l!["components"]!.AsArray().Any(c => (string?)c == "tool"))!;
        var listing = Proc.Check("tar", "-tzf", Path.Join(tmp["image"], "blobs/sha256", ((string)toolLayer["digest"]!)[7..]));
        Assert.Contains("usr/bin/tool", listing.Split('\n'));
        var stateLayer = build["layers"]!.AsArray().Single(l => l!["components"]!.AsArray().Any(c => (string?)c == "state"))!;
        Assert.Contains("usr/lib/sysimage/rpm/rpmdb.sqlite",
            Proc.Check("tar", "-tzf", Path.Join(tmp["image"], "blobs/sha256", ((string)stateLayer["digest"]!)[7..])).Split('\n'));
    }
}
