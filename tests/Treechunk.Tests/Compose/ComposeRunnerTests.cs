using Treechunk.Compose;
using Treechunk.Ostree;
using Treechunk.Tests.Support;
using Treechunk.Trees;

namespace Treechunk.Tests.Compose;

/// <summary>
/// ComposeRunner's own steps (units, add-files, remove-files, /dev, versions) on a tree laid down
/// by a stand-in backend; the real package managers are exercised in ComposeCommandTests.
/// </summary>
public class ComposeRunnerTests
{
    private sealed class LayDownBackend : IPackageBackend
    {
        public string Name => "test";

        public BackendResult Install(Treefile treefile, string rootfs, BackendOptions options)
        {
            Directory.CreateDirectory(Path.Join(rootfs, "usr/lib/systemd/system"));
            File.WriteAllText(Path.Join(rootfs, "usr/lib/systemd/system/app.service"), "[Unit]\nDescription=app\n[Install]\nWantedBy=multi-user.target\n");
            Directory.CreateDirectory(Path.Join(rootfs, "usr/share/doc/app"));
            File.WriteAllText(Path.Join(rootfs, "usr/share/doc/app/README"), "docs");
            Directory.CreateDirectory(Path.Join(rootfs, "dev"));
            Proc.Check("mknod", Path.Join(rootfs, "dev/null"), "c", "1", "3");
            return new BackendResult(1, 0, 1);
        }
    }

    private static Treefile Load(TempDir tmp)
    {
        Directory.CreateDirectory(tmp["tf"]);
        File.WriteAllText(tmp["tf/debian.sources"], "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm\nComponents: main\n");
        File.WriteAllText(tmp["tf/banner"], "welcome\n");
        File.WriteAllText(tmp["tf/treefile.yaml"], """
            ref: test/runner
            repos: [debian]
            packages: [app]
            automatic-version-prefix: "40"
            units: [app.service]
            add-files:
              - [banner, /etc/banner]
            remove-files:
              - usr/share/doc/app
            """);
        return Treefile.Load(tmp["tf/treefile.yaml"]);
    }

    [Fact]
    public void Treefile_edits_land_in_the_commit_and_versions_count_up()
    {
        using var tmp = new TempDir("runner");
        var tf = Load(tmp);
        var options = new ComposeOptions { RepoPath = tmp["repo"], SourceDateEpoch = 1700000000 };
        var first = ComposeRunner.ComposeTree(tf, new LayDownBackend(), options);
        Assert.Equal("40", first.Version);

        var repo = OstreeRepo.Open(tmp["repo"]);
        using (var tree = CommitTree.Open(repo, "test/runner"))
        {
            var link = tree.Find("etc/systemd/system/multi-user.target.wants/app.service");
            Assert.NotNull(link);
            Assert.Equal(EntryType.Symlink, link!.Type);
            Assert.Equal("/usr/lib/systemd/system/app.service", link.LinkTarget);
            Assert.NotNull(tree.Find("etc/banner"));
            Assert.Null(tree.Find("usr/share/doc/app"));
            Assert.NotNull(tree.Find("dev"));
            Assert.Null(tree.Find("dev/null"));
        }
        Proc.Check(Tools.Require("ostree"), "--repo=" + tmp["repo"], "fsck");

        Assert.Equal("40.1", ComposeRunner.ComposeTree(tf, new LayDownBackend(), options).Version);
        Assert.Equal("40.2", ComposeRunner.ComposeTree(tf, new LayDownBackend(), options).Version);
        var head = repo.ReadCommit(repo.ResolveRev("test/runner"));
        Assert.NotNull(head.Parent);
    }

    [Theory]
    [InlineData("12", null, "12")]
    [InlineData("12", "12", "12.1")]
    [InlineData("12", "12.9", "12.10")]
    [InlineData("12", "11.3", "12")]
    [InlineData("12", "12.x", "12")]
    public void Next_version(string prefix, string? previous, string expected) =>
        Assert.Equal(expected, ComposeRunner.NextVersion(prefix, previous));

    [Fact]
    public void A_unit_that_is_not_installed_is_an_error()
    {
        using var tmp = new TempDir("runner-unit");
        var tf = Load(tmp) with { Units = ["missing.service"] };
        var ex = Assert.Throws<TreechunkException>(() => ComposeRunner.ComposeTree(tf, new LayDownBackend(), new ComposeOptions { RepoPath = tmp["repo"] }));
        Assert.Contains("missing.service", ex.Message);
        Assert.False(File.Exists(Path.Join(tmp["repo"], "refs/heads/test/runner")));
    }
}
