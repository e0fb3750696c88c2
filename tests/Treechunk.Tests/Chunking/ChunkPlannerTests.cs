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

/// <summary>The expected-download packing: change likelihood decides which components share layers, and in what order.</summary>
public class ExpectedDownloadPlannerTests
{
    private const long Day = 86400;

    /// <summary>A package with the given number of changelog entries over the last two years.</summary>
    private static Component Pkg(string name, long size, int recentChanges) =>
        new(name, ComponentKind.Package, size, 1,
            Enumerable.Range(0, Math.Max(1, recentChanges)).Select(i => 1_700_000_000L - i * (recentChanges > 0 ? 700 / recentChanges : 3000) * Day).ToList());

    private static double ExpectedDownload(ChunkPlan plan, IReadOnlyList<Component> comps)
    {
        var byName = comps.ToDictionary(c => c.Name);
        return plan.Layers.Sum(l => ChangeLikelihood.OfLayer(l.Components.Select(n => byName[n])) * l.Size);
    }

    [Fact]
    public void Quiet_and_busy_packages_never_share_and_layers_go_where_they_save_most()
    {
        // Names interleave, so packing by name alone would mix the two kinds.
        var quiet = Enumerable.Range(0, 40).Select(i => Pkg($"p{i:00}q", 10_000, 0)).ToList();
        var busy = Enumerable.Range(0, 40).Select(i => Pkg($"p{i:00}b", 10_000, 20)).ToList();
        var comps = quiet.Concat(busy).ToList();
        var plan = ChunkPlanner.Plan(comps, 20);
        double Members(char kind) => plan.Layers.Where(l => l.Components[0][^1] == kind).Average(l => l.Components.Count);
        Assert.All(plan.Layers, l => Assert.Single(l.Components.Select(n => n[^1]).Distinct()));
        // A busy package (20 changes in two years: P = 0.92) is downloaded again almost surely
        // whatever it shares with, so the layers go to the quiet ones (P = 0.17), where a layer
        // of their own saves most.
        Assert.True(Members('b') > Members('q'), $"busy layers hold {Members('b')} on average, quiet ones {Members('q')}");
        // Most stable first: every quiet layer before every busy one.
        var kinds = plan.Layers.Select(l => l.Components[0][^1]).ToList();
        Assert.Equal(kinds.OrderByDescending(k => k).ToList(), kinds);

        // Better than cutting the same components, in name order, into as many layers regardless of history.
        var byName = new ChunkPlan(ChunkPlanner.PackContiguous(comps.OrderBy(c => c.Name, StringComparer.Ordinal).ToList(), plan.Layers.Count));
        Assert.True(ExpectedDownload(plan, comps) < ExpectedDownload(byName, comps), $"{ExpectedDownload(plan, comps)} vs {ExpectedDownload(byName, comps)}");
    }

    [Fact]
    public void The_whole_budget_is_used_when_components_must_share()
    {
        var comps = Enumerable.Range(0, 100).Select(i => Pkg($"p{i:000}", 1000 + i * 37 % 500, i % 7)).ToList();
        var plan = ChunkPlanner.Plan(comps, 32);
        Assert.Equal(32 - ChunkPlanner.ReservedLayers(32), plan.Layers.Count);
    }

    [Fact]
    public void A_previous_layer_naming_a_whole_package_keeps_all_its_parts()
    {
        Component Part(string path, PartKind kind) => new($"perl@{path}", ComponentKind.Package, 100, 1) { Parent = "perl", Part = kind };
        var comps = new List<Component>
        {
            Part("usr/bin/perl", PartKind.Rebuilt), Part("usr/share/perl/a", PartKind.Data), Part("usr/share/perl/m", PartKind.Data),
            new("zlib", ComponentKind.Package, 10, 1), new("bash", ComponentKind.Package, 50, 1),
        };
        var previous = new ChunkPlan([new PlannedLayer(["bash", "perl"], 1), new PlannedLayer(["zlib"], 1)]);
        var plan = ChunkPlanner.Plan(comps, 4, previous);
        Assert.True(plan.KeptPrevious);
        Assert.Equal(["bash", "perl@usr/bin/perl", "perl@usr/share/perl/a", "perl@usr/share/perl/m"], plan.Layers[0].Components);
        Assert.Equal(["zlib"], plan.Layers[1].Components);
        Assert.Equal(2, plan.Layers.Count);
    }

    [FsCheck.Xunit.Property(MaxTest = 200)]
    public bool With_histories_and_parts_every_component_is_placed_once_within_budget_and_the_plan_is_a_function_of_its_input(
        PositiveInt maxLayers, NonEmptyArray<PositiveInt> sizes, NonNegativeInt seed)
    {
        int max = maxLayers.Get % 80 + 1;
        var rng = new Random(seed.Get);
        var comps = sizes.Get.Select((s, i) =>
        {
            var history = Enumerable.Range(0, rng.Next(0, 12)).Select(_ => 1_600_000_000L + rng.Next(0, 100_000_000)).Distinct().OrderDescending().ToList();
            var kind = rng.Next(10) == 0 ? ComponentKind.Unowned : ComponentKind.Package;
            var c = new Component($"c{i}", kind, s.Get, 1, history);
            return rng.Next(4) == 0 && kind == ComponentKind.Package
                ? c with { Name = $"big@{i}", Parent = "big", Part = rng.Next(2) == 0 ? PartKind.Rebuilt : PartKind.Data }
                : c;
        }).ToList();
        var plan = ChunkPlanner.Plan(comps, max);
        var placed = plan.Layers.SelectMany(l => l.Components).ToList();
        var shuffled = comps.OrderBy(_ => rng.Next()).ToList();
        var again = ChunkPlanner.Plan(shuffled, max);
        var kept = ChunkPlanner.Plan(comps, max, plan);
        string Key(ChunkPlan p) => string.Join("|", p.Layers.Select(l => string.Join(",", l.Components)));
        return plan.Layers.Count <= max
               && placed.Count == comps.Count && placed.ToHashSet().SetEquals(comps.Select(c => c.Name))
               && plan.Layers.All(l => l.Components.Count > 0)
               && Key(again) == Key(plan)
               && kept.KeptPrevious && Key(kept) == Key(plan);
    }
}
