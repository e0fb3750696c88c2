using System.Text;
using System.Text.Json.Nodes;
using Treechunk.Build;
using Treechunk.Encapsulation;
using Treechunk.Ostree;
using Treechunk.Tests.Support;
using Treechunk.Transports;
using Treechunk.Trees;

namespace Treechunk.Tests.Ostree;

/// <summary>The encapsulation rules hold for library callers too, not only through the CLI.</summary>
public class EncapsulationLibraryTests
{
    private static readonly byte[] Label = "system_u:object_r:etc_t:s0\0"u8.ToArray();

    /// <summary>A commit whose files carry SELinux labels, written from a tree in memory (no filesystem needs to accept the xattr).</summary>
    private static (OstreeRepo Repo, string Commit) LabelledCommit(string repoPath, ulong timestamp)
    {
        var repo = OstreeRepo.Init(repoPath, RepoMode.Archive);
        var selinux = new List<KeyValuePair<string, byte[]>> { new("security.selinux", Label) };
        var content = Encoding.UTF8.GetBytes("labelled\n");
        using var tree = new MemoryTree([
            (new TreeEntry { Path = "etc", Type = EntryType.Directory, Mode = 0x1ED, Xattrs = selinux }, null),
            (new TreeEntry { Path = "etc/app.conf", Type = EntryType.Regular, Mode = 0x1A4, Size = content.Length, Xattrs = selinux }, content),
        ]);
        var commit = CommitWriter.Commit(repo, tree, new CommitOptions { Ref = "os/labelled", Timestamp = timestamp, Subject = "labelled" });
        return (repo, commit);
    }

    [Fact]
    public void Export_keeps_selinux_labels_for_a_library_caller_so_the_image_imports_to_the_same_commit()
    {
        using var tmp = new TempDir("encap-lib");
        var (repo, commit) = LabelledCommit(tmp["repo"], 1_700_000_000);
        // Default options: KeepSelinux is false, and export must keep the labels anyway.
        var reference = ImageReference.Parse($"oci:{tmp["image"]}:t", ReferenceRole.Destination);
        using (var destination = reference.OpenDestination(force: false))
            OstreeImageExport.Export(repo, "os/labelled", destination, new BuildOptions { Tag = "t" });
        using var image = ImageReference.Parse($"oci:{tmp["image"]}:t").OpenImage();
        var result = OstreeImageImport.Import(image, OstreeRepo.Init(tmp["fresh"], RepoMode.Archive), "os/imported", 0);
        Assert.True(result.Exact);
        Assert.Equal(commit, result.Commit);
    }

    [Fact]
    public void An_image_of_a_commit_is_created_at_the_commit_time_unless_SOURCE_DATE_EPOCH_says_otherwise()
    {
        using var tmp = new TempDir("encap-created");
        LabelledCommit(tmp["repo"], 1_704_067_200); // 2024-01-01T00:00:00Z
        TreechunkCli.Check("compose", "container-encapsulate", "--repo", tmp["repo"], "os/labelled", $"oci:{tmp["image"]}:a");
        var config = JsonNode.Parse(TreechunkCli.Check("oci", "inspect", "--raw", "--config", $"oci:{tmp["image"]}:a"))!;
        Assert.Equal("2024-01-01T00:00:00Z", (string)config["created"]!);
        Assert.All(config["history"]!.AsArray(), h => Assert.Equal("2024-01-01T00:00:00Z", (string)h!["created"]!));

        var epoch = TreechunkCli.RunWithEnv(new Dictionary<string, string> { ["SOURCE_DATE_EPOCH"] = "1000" },
            "compose", "container-encapsulate", "--repo", tmp["repo"], "os/labelled", $"oci:{tmp["image"]}:b");
        Assert.True(epoch.ExitCode == 0, epoch.ToString());
        var pinned = JsonNode.Parse(TreechunkCli.Check("oci", "inspect", "--raw", "--config", $"oci:{tmp["image"]}:b"))!;
        Assert.Equal("1970-01-01T00:16:40Z", (string)pinned["created"]!);
    }
}
