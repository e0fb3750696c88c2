using System.Text;
using Treechunk.Build;
using Treechunk.Chunking;
using Treechunk.Tests.Support;
using Treechunk.Trees;

namespace Treechunk.Tests.Build;

public class LayerContentsTests
{
    private static TreeEntry Dir(string p, int uid = 0) => ZeroTree.Dir(p, uid);
    private static TreeEntry File(string p, long size, params (string, string)[] xattrs) => ZeroTree.File(p, size, xattrs);

    private static readonly ZeroTree Tree = new([
        Dir("usr"), Dir("usr/lib"), Dir("srv", uid: 33),
        File("usr/lib/huge.so", 5 << 20, ("security.selinux", "system_u:object_r:lib_t:s0")),
        File("usr/lib/small.so", 1000),
        File("srv/site.html", 10, ("user.component", "website")),
        Dir("etc"), File("etc/ld.so.cache", 10),
    ]);

    [Fact]
    public void Large_files_state_and_xattr_components_are_their_own()
    {
        var map = ComponentAssigner.Assign(Tree, ChunkAlgorithm.Package, 1 << 20, packages: null);
        Assert.Equal("file:usr/lib/huge.so", map.ComponentOfPath["usr/lib/huge.so"]);
        Assert.Equal(ComponentKind.LargeFile, map.Components.Single(c => c.Name == "file:usr/lib/huge.so").Kind);
        Assert.Equal("website", map.ComponentOfPath["srv/site.html"]);
        Assert.Equal("state", map.ComponentOfPath["etc/ld.so.cache"]);
        Assert.StartsWith("unowned:", map.ComponentOfPath["usr/lib/small.so"]);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Selinux_labels_are_kept_only_when_asked_and_parents_come_along(bool keepSelinux)
    {
        var map = ComponentAssigner.Assign(Tree, ChunkAlgorithm.Package, 1 << 20, packages: null);
        var plan = ChunkPlanner.Plan(map.Components, 64);
        var layers = ChunkedImageBuilder.LayerContents(Tree, map, plan, keepSelinux);
        var huge = layers.Single(l => l.Any(e => e.Path == "usr/lib/huge.so"));
        Assert.Equal(["usr", "usr/lib", "usr/lib/huge.so"], huge.Select(e => e.Path));
        Assert.Equal(keepSelinux, huge[2].GetXattr("security.selinux") != null);
        var site = layers.Single(l => l.Any(e => e.Path == "srv/site.html"));
        Assert.Equal(33, site.Single(e => e.Path == "srv").Uid);
    }
}
