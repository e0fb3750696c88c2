using FsCheck;
using FsCheck.Fluent;
using Treechunk.Chunking;

namespace Treechunk.Tests.Chunking;

public class ChunkPlannerTests
{
    private static Component Pkg(string name, long size) => new(name, ComponentKind.Package, size, 1);

    [Fact]
    public void Few_components_get_a_layer_each_largest_first()
    {
        var plan = ChunkPlanner.Plan([Pkg("a", 10), Pkg("b", 300), Pkg("c", 20)], 64);
        Assert.Equal(["b", "c", "a"], plan.Layers.Select(l => l.Components.Single()));
    }

    [Fact]
    public void State_component_stays_alone_and_last()
    {
        var comps = Enumerable.Range(0, 100).Select(i => Pkg($"p{i:000}", 1000 + i))
            .Append(new Component("state", ComponentKind.State, 5, 3)).ToList();
        var plan = ChunkPlanner.Plan(comps, 10);
        // Nine for the packages, one left free for the next update's new components, and the state.
        Assert.Equal(10 - ChunkPlanner.ReservedLayers(9), plan.Layers.Count);
        Assert.Equal(["state"], plan.Layers[^1].Components);
    }

    [Fact]
    public void Many_components_fit_the_layer_budget_with_the_largest_alone()
    {
        var comps = Enumerable.Range(0, 500).Select(i => Pkg($"p{i:000}", i * 1000L)).ToList();
        var plan = ChunkPlanner.Plan(comps, 64);
        // Greedy grouping may leave a bin unused, never exceed the budget.
        Assert.InRange(plan.Layers.Count, 60, 64);
        // The largest components have layers of their own.
        Assert.Contains(plan.Layers, l => l.Components.SequenceEqual(["p499"]));
        Assert.Contains(plan.Layers, l => l.Components.SequenceEqual(["p460"]));
        Assert.DoesNotContain(plan.Layers, l => l.Components.SequenceEqual(["p001"]));
    }

    [Fact]
    public void Adding_a_small_package_changes_at_most_one_group()
    {
        var comps = Enumerable.Range(0, 300).Select(i => Pkg($"p{i:000}", 10_000 + (i * 7919 % 1000))).ToList();
        var before = ChunkPlanner.Plan(comps, 40).Layers.Select(l => string.Join(",", l.Components)).ToHashSet();
        var after = ChunkPlanner.Plan([.. comps, Pkg("p150x", 10)], 40).Layers.Select(l => string.Join(",", l.Components)).ToHashSet();
        // The group that takes the new package is the only layer whose content differs.
        Assert.True(after.Except(before).Count() <= 1, $"changed layers: {string.Join(" | ", after.Except(before))}");
        Assert.True(before.Except(after).Count() <= 1, $"lost layers: {string.Join(" | ", before.Except(after))}");
    }

    [Fact]
    public void Size_driven_chunks_are_merged_in_order_when_too_many()
    {
        var comps = Enumerable.Range(0, 10).Select(i => new Component($"chunk:{i}", ComponentKind.Chunk, 100, 1)).ToList();
        var plan = ChunkPlanner.Plan(comps, 4);
        Assert.True(plan.Layers.Count <= 4);
        Assert.Equal(comps.Select(c => c.Name), plan.Layers.SelectMany(l => l.Components));
    }

    [Fact]
    public void Zero_max_layers_is_refused()
    {
        Assert.Throws<TreechunkException>(() => ChunkPlanner.Plan([Pkg("a", 1)], 0));
    }

    [FsCheck.Xunit.Property(MaxTest = 200)]
    public bool Every_component_lands_in_exactly_one_layer_within_budget(PositiveInt maxLayers, NonEmptyArray<PositiveInt> sizes, bool withState)
    {
        int max = Math.Min(maxLayers.Get, 200);
        var comps = sizes.Get.Select((s, i) => Pkg($"c{i}", s.Get)).ToList();
        if (withState) comps.Add(new Component("state", ComponentKind.State, 1, 1));
        var plan = ChunkPlanner.Plan(comps, max);
        var placed = plan.Layers.SelectMany(l => l.Components).ToList();
        return plan.Layers.Count <= max
               && placed.Count == comps.Count
               && placed.ToHashSet().SetEquals(comps.Select(c => c.Name))
               && plan.Layers.All(l => l.Components.Count > 0)
               && ChunkPlanner.Plan(comps.AsEnumerable().Reverse().ToList(), max).Layers
                   .Select(l => string.Join(",", l.Components)).SequenceEqual(plan.Layers.Select(l => string.Join(",", l.Components)));
    }
}

public class ContentDefinedSplitterTests
{
    private static List<(string Path, long Size)> Files(int n, int seed) =>
        Enumerable.Range(0, n).Select(i => ($"usr/share/f{i:00000}", (long)(new Random(seed + i).Next(100, 200_000)))).ToList();

    [Fact]
    public void Runs_cover_every_file_in_order_and_respect_the_maximum()
    {
        var files = Files(3000, 1);
        var runs = ContentDefinedSplitter.Split(files, f => f.Path, f => f.Size, 4 << 20);
        Assert.Equal(files, runs.SelectMany(r => r));
        Assert.All(runs, r => Assert.True(r.Count == 1 || r.Sum(f => f.Size + 512) <= 8 << 20));
        Assert.True(runs.Count > 20, $"expected many runs, got {runs.Count}");
    }

    [Fact]
    public void Changing_one_file_changes_few_runs()
    {
        var files = Files(3000, 2);
        var before = ContentDefinedSplitter.Split(files, f => f.Path, f => f.Size, 4 << 20).Select(r => string.Join(",", r.Select(f => f.Path))).ToHashSet();
        var changed = files.ToList();
        changed.Insert(1500, ("usr/share/f01499a", 50_000));
        changed.RemoveAt(400);
        var after = ContentDefinedSplitter.Split(changed, f => f.Path, f => f.Size, 4 << 20).Select(r => string.Join(",", r.Select(f => f.Path))).ToHashSet();
        Assert.True(after.Except(before).Count() <= 4, $"{after.Except(before).Count()} runs changed of {after.Count}");
    }

    [Fact]
    public void Fixed_runs_end_as_soon_as_they_reach_the_target()
    {
        var files = Files(3000, 3);
        const long target = 4 << 20;
        var runs = ContentDefinedSplitter.SplitFixed(files, f => f.Size, target);
        Assert.Equal(files, runs.SelectMany(r => r));
        long Bytes(IEnumerable<(string Path, long Size)> r) => r.Sum(f => f.Size + ContentDefinedSplitter.EntryOverhead);
        // Every run but the last reached the target, and would not have without its last file.
        Assert.All(runs.SkipLast(1), r => Assert.True(Bytes(r) >= target && Bytes(r.SkipLast(1)) < target));
        Assert.True(Bytes(runs[^1]) < target || runs.Count == 1 || Bytes(runs[^1].SkipLast(1)) < target);
    }

    [Fact]
    public void Fixed_runs_shift_after_an_insert_where_content_defined_runs_do_not()
    {
        var files = Files(3000, 4);
        var changed = files.ToList();
        changed.Insert(10, ("usr/share/f00009a", 150_000));
        int Kept(Func<List<(string Path, long Size)>, List<List<(string Path, long Size)>>> split)
        {
            var a = split(files).Select(r => string.Join(",", r.Select(f => f.Path))).ToHashSet();
            return split(changed).Count(r => a.Contains(string.Join(",", r.Select(f => f.Path))));
        }
        var fixedKept = Kept(f => ContentDefinedSplitter.SplitFixed(f, x => x.Size, 4 << 20));
        var cdcKept = Kept(f => ContentDefinedSplitter.Split(f, x => x.Path, x => x.Size, 4 << 20));
        Assert.True(cdcKept > fixedKept * 3, $"content-defined kept {cdcKept} runs, fixed {fixedKept}");
    }

    [FsCheck.Xunit.Property(MaxTest = 200)]
    public bool Fixed_runs_cover_any_input_in_order(NonEmptyArray<PositiveInt> sizes, PositiveInt target)
    {
        var items = sizes.Get.Select((s, i) => (Index: i, Size: (long)s.Get)).ToList();
        var runs = ContentDefinedSplitter.SplitFixed(items, x => x.Size, target.Get);
        return runs.SelectMany(r => r).SequenceEqual(items) && runs.All(r => r.Count > 0);
    }

    [Fact]
    public void Chunk_sizes_parse_with_units_and_refuse_garbage()
    {
        Assert.Equal(10L << 20, Sizes.Parse("10M"));
        Assert.Equal(512L << 10, Sizes.Parse("512K"));
        Assert.Equal(1L << 30, Sizes.Parse("1G"));
        Assert.Equal(3L << 19, Sizes.Parse("1.5MiB"));
        Assert.Equal(8192, Sizes.Parse("8192"));
        Assert.Throws<TreechunkException>(() => Sizes.Parse("ten"));
        Assert.Throws<TreechunkException>(() => Sizes.Parse("-5M"));
        Assert.Throws<TreechunkException>(() => Sizes.Parse("10X"));
        Assert.Throws<TreechunkException>(() => Sizes.Parse("1"));
    }
}
