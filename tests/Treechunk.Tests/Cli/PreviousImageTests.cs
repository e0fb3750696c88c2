using System.Text;
using System.Text.Json.Nodes;
using Treechunk.Posix;
using Treechunk.Tests.Support;

namespace Treechunk.Tests.CommandLine;

/// <summary>
/// --previous: a build that updates an image keeps every component in the layer it had, so the
/// layers whose content did not change come out byte-identical; by default the previous image
/// is the one already at the destination's tag.
/// </summary>
public class PreviousImageTests
{
    /// <summary>40 components (user.component xattrs) of uneven sizes, more than 8 layers can hold one each.</summary>
    private static void Tree(string root, bool withUpdate)
    {
        var rng = new Random(3);
        for (int i = 0; i < 40; i++)
        {
            var dir = Path.Join(root, $"opt/c{i:00}");
            Directory.CreateDirectory(dir);
            var bytes = new byte[2_000 + rng.Next(30_000)];
            rng.NextBytes(bytes);
            var file = Path.Join(dir, "data.bin");
            File.WriteAllBytes(file, bytes);
            LibC.SetXattr(file, "user.component", Encoding.UTF8.GetBytes($"c{i:00}"));
        }
        if (!withUpdate) return;
        // The update: one component changes, and a big new one arrives that a fresh plan would
        // give a layer of its own first, moving the groups after it.
        File.AppendAllText(Path.Join(root, "opt/c05/data.bin"), "changed");
        Directory.CreateDirectory(Path.Join(root, "opt/a-new"));
        var big = new byte[200_000];
        new Random(9).NextBytes(big);
        File.WriteAllBytes(Path.Join(root, "opt/a-new/big.bin"), big);
        LibC.SetXattr(Path.Join(root, "opt/a-new/big.bin"), "user.component", "a-new"u8.ToArray());
    }

    private static List<string> Layers(string reference) =>
        JsonNode.Parse(TreechunkCli.Check("oci", "layers", reference, "--json"))!.AsArray().Select(l => (string)l!["digest"]!).ToList();

    private static string Build(string rootfs, string output, params string[] extra) =>
        (string)JsonNode.Parse(TreechunkCli.Check(["compose", "build-chunked-oci", "--rootfs", rootfs, "--output", output, "--max-layers", "8", "--json", .. extra]))!["manifest_digest"]!;

    [Fact]
    public void Previous_keeps_unchanged_layers_identical_and_defaults_to_the_destination_tag()
    {
        using var tmp = new TempDir("previous");
        Tree(tmp["v1"], withUpdate: false);
        Tree(tmp["v2"], withUpdate: true);
        Build(tmp["v1"], $"oci:{tmp["img"]}:v1");
        var v1 = Layers($"oci:{tmp["img"]}:v1");
        Assert.Equal(7, v1.Count); // one of the 8 left free for the next update's new components

        Build(tmp["v2"], $"oci:{tmp["fresh"]}:v2");
        var fresh = Layers($"oci:{tmp["fresh"]}:v2");
        Build(tmp["v2"], $"oci:{tmp["kept"]}:v2", "--previous", $"oci:{tmp["img"]}:v1");
        var kept = Layers($"oci:{tmp["kept"]}:v2");

        int Reused(List<string> v2) => v2.Count(v1.Contains);
        // Every layer but the one holding the changed component is reused; the new component
        // went to a layer of its own, within the budget.
        Assert.Equal(v1.Count - 1, Reused(kept));
        Assert.True(kept.Count <= 8);
        Assert.True(Reused(fresh) < Reused(kept), $"fresh plan reused {Reused(fresh)}, with --previous {Reused(kept)}");

        var report = JsonNode.Parse(TreechunkCli.Check("compose", "build-chunked-oci", "--rootfs", tmp["v2"], "--output", $"oci:{tmp["kept2"]}:v2",
            "--max-layers", "8", "--previous", $"oci:{tmp["img"]}:v1", "--json"))!;
        Assert.True((bool)report["kept_previous"]!);
        Assert.Null(JsonNode.Parse(TreechunkCli.Check("compose", "build-chunked-oci", "--rootfs", tmp["v2"], "--output", $"oci:{tmp["fresh2"]}", "--json"))!["kept_previous"]);

        // Building into the tag that holds v1 takes v1 as the previous image by itself...
        Proc.Check("cp", "-a", tmp["img"], tmp["same-tag"]);
        Build(tmp["v2"], $"oci:{tmp["same-tag"]}:v1");
        Assert.Equal(kept, Layers($"oci:{tmp["same-tag"]}:v1"));
        // ...and --previous none plans afresh.
        Proc.Check("cp", "-a", tmp["img"], tmp["none"]);
        Build(tmp["v2"], $"oci:{tmp["none"]}:v1", "--previous", "none");
        Assert.Equal(fresh, Layers($"oci:{tmp["none"]}:v1"));

        // A build of the same input onto its own image reuses every layer.
        Proc.Check("cp", "-a", tmp["img"], tmp["again"]);
        Build(tmp["v1"], $"oci:{tmp["again"]}:v1");
        Assert.Equal(v1, Layers($"oci:{tmp["again"]}:v1"));

        // A --previous that cannot be read is an error naming it; nothing is written.
        Assert.Contains("--previous", TreechunkCli.Fails(2, "compose", "build-chunked-oci", "--rootfs", tmp["v2"], "--output", $"oci:{tmp["bad"]}", "--previous", $"oci:{tmp["nowhere"]}"));
        Assert.False(Directory.Exists(tmp["bad"]) && File.Exists(Path.Join(tmp["bad"], "index.json")));
    }
}
