using FsCheck;
using FsCheck.Fluent;
using Treechunk.Chunking;

namespace Treechunk.Tests.Chunking;

/// <summary>The planner's previous-plan input: components keep the layer they had while the old plan fits.</summary>
public class PreviousPlanTests
{
    private static Component Pkg(string name, long size) => new(name, ComponentKind.Package, size, 1);

    [Fact]
    public void Kept_groups_stay_and_new_components_take_the_remaining_layers()
    {
        var previous = new ChunkPlan([new PlannedLayer(["a", "b"], 30), new PlannedLayer(["c"], 10), new PlannedLayer(["gone"], 5)]);
        var plan = ChunkPlanner.Plan([Pkg("a", 10), Pkg("b", 25), Pkg("c", 12), Pkg("new", 99)], 5, previous);
        Assert.True(plan.KeptPrevious);
        Assert.Equal([["a", "b"], ["c"], ["new"]], plan.Layers.Select(l => l.Components.ToArray()));
        Assert.Equal(35, plan.Layers[0].Size);
        // Without the previous plan, the big new component would be planned first.
        var fresh = ChunkPlanner.Plan([Pkg("a", 10), Pkg("b", 25), Pkg("c", 12), Pkg("new", 99)], 5);
        Assert.False(fresh.KeptPrevious);
        Assert.Equal("new", fresh.Layers[0].Components[0]);
    }

    [Fact]
    public void A_previous_plan_with_more_layers_than_the_budget_is_dropped()
    {
        var previous = new ChunkPlan([new PlannedLayer(["a"], 1), new PlannedLayer(["b"], 1), new PlannedLayer(["c"], 1), new PlannedLayer(["d"], 1)]);
        var plan = ChunkPlanner.Plan([Pkg("a", 1), Pkg("b", 1), Pkg("c", 1), Pkg("d", 1)], 3, previous);
        Assert.False(plan.KeptPrevious);
        Assert.True(plan.Layers.Count <= 3);
        Assert.Equal(["a", "b", "c", "d"], plan.Layers.SelectMany(l => l.Components).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void With_no_layer_left_new_components_join_the_smallest_layer_and_the_others_stay()
    {
        var previous = new ChunkPlan([new PlannedLayer(["a"], 50), new PlannedLayer(["b"], 5), new PlannedLayer(["c"], 30)]);
        var plan = ChunkPlanner.Plan([Pkg("a", 50), Pkg("b", 5), Pkg("c", 30), Pkg("new", 99)], 3, previous);
        Assert.True(plan.KeptPrevious);
        Assert.Equal([["a"], ["b", "new"], ["c"]], plan.Layers.Select(l => l.Components.ToArray()));
    }

    [Fact]
    public void A_fresh_plan_of_many_components_leaves_layers_for_the_next_update()
    {
        var comps = Enumerable.Range(0, 200).Select(i => Pkg($"p{i:000}", 1000 + i)).ToList();
        var v1 = ChunkPlanner.Plan(comps, 64);
        Assert.InRange(v1.Layers.Count, 56, 64 - ChunkPlanner.ReservedLayers(64));
        // The next update brings two new components: every old layer stays as it was.
        var v2 = ChunkPlanner.Plan([.. comps, Pkg("zz-new", 5_000), Pkg("aa-new", 7)], 64, v1);
        Assert.True(v2.KeptPrevious);
        Assert.Equal(v1.Layers.Select(l => string.Join(",", l.Components)), v2.Layers.Take(v1.Layers.Count).Select(l => string.Join(",", l.Components)));
        Assert.True(v2.Layers.Count <= 64);
    }

    [FsCheck.Xunit.Property(MaxTest = 200)]
    public Property Replanning_with_its_own_plan_changes_nothing(PositiveInt count, PositiveInt maxLayers)
    {
        var components = Enumerable.Range(0, count.Get % 80 + 1).Select(i => Pkg($"p{i:000}", (i * 7919L) % 1000 + 1)).ToList();
        int max = maxLayers.Get % 64 + 1;
        var plan = ChunkPlanner.Plan(components, max);
        var again = ChunkPlanner.Plan(components, max, plan);
        var sameLayers = plan.Layers.Select(l => string.Join(",", l.Components)).SequenceEqual(again.Layers.Select(l => string.Join(",", l.Components)));
        var everyOnce = again.Layers.SelectMany(l => l.Components).Order(StringComparer.Ordinal).SequenceEqual(components.Select(c => c.Name));
        return (sameLayers && again.KeptPrevious && again.Layers.Count <= max && everyOnce).ToProperty();
    }
}
