using Treechunk.Chunking;
using Treechunk.Packages;
using Treechunk.Tests.Support;
using Treechunk.Trees;
using static Treechunk.Tests.Support.ZeroTree;

namespace Treechunk.Tests.Chunking;

/// <summary>Large packages cut into parts, and unowned directories given to their content.</summary>
public class ComponentAssignerTests
{
    private const long MiB = 1 << 20;
    private static readonly long[] History = [1_700_000_000, 1_690_000_000];

    private sealed class Packages(Dictionary<string, string> owners) : IPackageDatabase
    {
        public string Kind => "dpkg";
        public IReadOnlyDictionary<string, string> OwnerOf => owners;
        public IReadOnlyDictionary<string, PackageComponent> Components =>
            owners.Values.Distinct().Order(StringComparer.Ordinal).ToDictionary(n => n, n => new PackageComponent(n, [n], History));
    }

    private static (ZeroTree Tree, Packages Db) BigAndSmall()
    {
        var entries = new List<TreeEntry>
        {
            Dir("usr"), Dir("usr/bin"), Dir("usr/lib"), Dir("usr/share"), Dir("usr/share/big"), Dir("usr/share/man"), Dir("usr/share/man/man1"),
            File("usr/bin/big", 3 * MiB), File("usr/lib/libbig.so.1.2", 3 * MiB), File("usr/lib/libbig.so.1", 0),
            File("usr/share/man/man1/big.1.gz", 4096), File("usr/bin/small", 1000),
            Hardlink("usr/bin/big-alias", "usr/bin/big"),
        };
        entries.AddRange(Enumerable.Range(0, 12).Select(i => File($"usr/share/big/data{i:00}.pm", MiB)));
        var owners = entries.Where(e => e.Type != EntryType.Directory && e.Type != EntryType.Hardlink)
            .ToDictionary(e => e.Path, e => e.Path == "usr/bin/small" ? "small" : "big");
        return (new ZeroTree(entries), new Packages(owners));
    }

    [Fact]
    public void A_package_over_the_chunk_size_is_cut_into_rebuilt_and_data_parts()
    {
        var (tree, db) = BigAndSmall();
        var map = ComponentAssigner.Assign(tree, ChunkAlgorithm.Package, 8 * MiB, db);
        var parts = map.Components.Where(c => c.Parent == "big").ToList();
        Assert.DoesNotContain(map.Components, c => c.Name == "big");
        Assert.True(parts.Count >= 3, string.Join(", ", parts.Select(p => p.Name)));
        Assert.All(parts, p => Assert.StartsWith("big@", p.Name));
        Assert.All(parts, p => Assert.Equal(History, p.ChangeTimes));
        Assert.Equal(tree.Entries.Where(e => e.Type == EntryType.Regular && e.Path != "usr/bin/small").Sum(e => e.Size), parts.Sum(p => p.Size));

        string PartOf(string path) => map.ComponentOfPath[path];
        Component Named(string name) => map.Components.Single(c => c.Name == name);
        foreach (var rebuilt in new[] { "usr/bin/big", "usr/lib/libbig.so.1.2", "usr/lib/libbig.so.1", "usr/share/man/man1/big.1.gz" })
            Assert.Equal(PartKind.Rebuilt, Named(PartOf(rebuilt)).Part);
        Assert.All(Enumerable.Range(0, 12), i => Assert.Equal(PartKind.Data, Named(PartOf($"usr/share/big/data{i:00}.pm")).Part));
        // Data parts are cut at half the chunk size: 12 MiB of data needs more than one.
        Assert.True(parts.Count(p => p.Part == PartKind.Data) >= 2);
        Assert.All(parts, p => Assert.True(p.Size <= 2 * ComponentAssigner.PartTarget(8 * MiB) + MiB, $"{p.Name}: {p.Size}"));
        // A hardlink goes where its data is; a package under the chunk size stays whole.
        Assert.Equal(PartOf("usr/bin/big"), PartOf("usr/bin/big-alias"));
        Assert.Equal("small", PartOf("usr/bin/small"));
        Assert.Null(Named("small").Parent);

        // Above the package's size (a chunk size of 64 MiB), nothing is cut.
        var whole = ComponentAssigner.Assign(tree, ChunkAlgorithm.Package, 64 * MiB, db);
        Assert.Equal("big", whole.ComponentOfPath["usr/share/big/data05.pm"]);
        Assert.Equal(PartKind.Whole, whole.Components.Single(c => c.Name == "big").Part);
    }

    [Fact]
    public void Parts_keep_their_names_when_an_update_adds_a_file_elsewhere_in_the_package()
    {
        var (tree, db) = BigAndSmall();
        var before = ComponentAssigner.Assign(tree, ChunkAlgorithm.Package, 8 * MiB, db);
        var added = new ZeroTree(tree.Entries.Append(File("usr/share/big/data99.pm", MiB)));
        var owners = db.OwnerOf.ToDictionary(kv => kv.Key, kv => kv.Value);
        owners["usr/share/big/data99.pm"] = "big";
        var after = ComponentAssigner.Assign(added, ChunkAlgorithm.Package, 8 * MiB, new Packages(owners));
        var kept = before.Components.Where(c => c.Parent == "big").Select(c => c.Name).Intersect(after.Components.Select(c => c.Name)).ToList();
        // Content-defined boundaries: at most the part at the end changes its files.
        Assert.True(kept.Count >= before.Components.Count(c => c.Parent == "big") - 1, string.Join(", ", kept));
        foreach (var name in kept.Where(n => !after.ComponentOfPath.Where(kv => kv.Value == n).Any(kv => kv.Key == "usr/share/big/data99.pm")))
            Assert.Equal(before.ComponentOfPath.Where(kv => kv.Value == name).Select(kv => kv.Key).Order(), after.ComponentOfPath.Where(kv => kv.Value == name).Select(kv => kv.Key).Order());
    }

    [Fact]
    public void Unowned_directories_go_with_the_first_component_below_them_and_empty_ones_stay_unowned()
    {
        var tree = new ZeroTree([
            Dir("opt"), Dir("opt/app"), File("opt/app/run", 10, ("user.component", "app")),
            Dir("opt/app-data"), Dir("opt/empty"), File("opt/zz", 5, ("user.component", "zz")),
        ]);
        var map = ComponentAssigner.Assign(tree, ChunkAlgorithm.Package, 16 * MiB, packages: null);
        Assert.Equal("app", map.ComponentOfPath["opt"]);
        Assert.Equal("app", map.ComponentOfPath["opt/app"]);
        // "opt/app-data" sorts between "opt/app" and "opt/app/run" but is no parent of it.
        Assert.StartsWith("unowned:", map.ComponentOfPath["opt/app-data"]);
        Assert.StartsWith("unowned:", map.ComponentOfPath["opt/empty"]);
        // The directories given away are carried as parents, not counted as the component's files.
        Assert.Equal(1, map.Components.Single(c => c.Name == "app").FileCount);
    }
}
