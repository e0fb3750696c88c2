using System.Text.Json.Nodes;
using Treechunk.Tests.Support;

namespace Treechunk.Tests.CommandLine;

/// <summary>--from flattens an image written by umoci (several layers, whiteouts) and rechunks it.</summary>
public class RechunkFromImageTests
{
    [Fact]
    public void Umoci_image_with_whiteouts_is_flattened_and_rechunked()
    {
        using var tmp = new TempDir("from");
        var umoci = Tools.Require("umoci");
        var layout = tmp["src"];
        var bundle = tmp["bundle"];
        Proc.Check(umoci, "init", "--layout", layout);
        Proc.Check(umoci, "new", "--image", $"{layout}:v1");
        Proc.Check(umoci, "config", "--image", $"{layout}:v1", "--config.env", "APP_MODE=prod", "--config.cmd", "/usr/bin/app");

        // Layer 1: a small tree.
        Proc.Check(umoci, "unpack", "--image", $"{layout}:v1", bundle);
        var rootfs = Path.Join(bundle, "rootfs");
        Proc.Sh($"""
            cd '{rootfs}'
            mkdir -p usr/bin etc/app.d var/cache/app
            printf 'app v1' > usr/bin/app; chmod 755 usr/bin/app
            printf 'old' > etc/app.d/old.conf
            printf 'keep' > etc/app.d/keep.conf
            printf 'cache' > var/cache/app/blob
            ln -s app usr/bin/app-link
            """);
        Proc.Check(umoci, "repack", "--image", $"{layout}:v1", bundle);
        // Layer 2: delete a file and a directory (whiteouts), change one, add one.
        Proc.Sh($"""
            cd '{rootfs}'
            rm etc/app.d/old.conf
            rm -rf var/cache/app
            printf 'app v2' > usr/bin/app
            printf 'new' > etc/app.d/new.conf
            """);
        Proc.Check(umoci, "repack", "--image", $"{layout}:v1", bundle);
        var expected = TreeSnapshot.Of(rootfs);

        var result = JsonNode.Parse(TreechunkCli.Check("compose", "build-chunked-oci", "--from", $"oci:{layout}:v1",
            "--output", $"oci:{tmp["out"]}:re", "--json"))!;
        Assert.NotNull(result["manifest_digest"]);
        TreechunkCli.Check("oci", "extract", $"oci:{tmp["out"]}:re", tmp["x"]);
        TreeSnapshot.AssertEqual(expected, TreeSnapshot.Of(tmp["x"]));
        Assert.False(File.Exists(tmp["x/etc/app.d/old.conf"]));
        Assert.Equal("app v2", File.ReadAllText(tmp["x/usr/bin/app"]));

        // The runtime config of the source image is kept.
        var inspect = JsonNode.Parse(TreechunkCli.Check("oci", "inspect", $"oci:{tmp["out"]}:re", "--json"))!;
        Assert.Contains("APP_MODE=prod", inspect["config"]!["config"]!["Env"]!.AsArray().Select(e => (string?)e));
        Assert.Equal("/usr/bin/app", (string?)inspect["config"]!["config"]!["Cmd"]![0]);

        // The same from an oci-archive written by skopeo, and twice gives the same digest.
        Proc.Check(Tools.Require("skopeo"), "copy", $"oci:{layout}:v1", $"oci-archive:{tmp["src.tar"]}:v1");
        var again = JsonNode.Parse(TreechunkCli.Check("compose", "build-chunked-oci", "--from", $"oci-archive:{tmp["src.tar"]}",
            "--output", $"oci:{tmp["out2"]}:re", "--json"))!;
        Assert.Equal((string?)result["manifest_digest"], (string?)again["manifest_digest"]);
    }
}
