using Treechunk.Chunking;
using Treechunk.Oci;

namespace Treechunk.Build;

/// <summary>
/// The layer annotations that say what a layer holds, written by the builder and read back by
/// `oci layers`, `oci chunk list` and the planner of the next build: the component names
/// (ours, and rpm-ostree's key for the same list), and files and bytes per component.
/// </summary>
public static class LayerAnnotations
{
    public static SortedDictionary<string, string> ForComponents(IEnumerable<string> components, IReadOnlyDictionary<string, Component>? stats)
    {
        var names = components.OrderBy(n => n, StringComparer.Ordinal).ToList();
        var joined = string.Join(",", names);
        var result = new SortedDictionary<string, string>(StringComparer.Ordinal)
        {
            [Annotations.Components] = joined,
            [Annotations.OstreeComponents] = joined,
        };
        if (stats != null) result[Annotations.ComponentStats] = ComponentStats.Format(names, stats);
        return result;
    }

    /// <summary>The <see cref="Annotations.Compression"/> value of the layers a build writes (every layer of one build is compressed alike).</summary>
    public static string Compression(BuildOptions options) =>
        LayerCompressionParams.For(options.Compression, options.CompressionLevel ?? LayerCompression.DefaultLevel(options.Compression), options.ParallelChunks).ToString();

    /// <summary>A layer's component names: ours, else rpm-ostree's (ostree.components); empty for images of other tools.</summary>
    public static List<string> Components(Descriptor layer) =>
        (layer.Annotations?.GetValueOrDefault(Annotations.Components) ?? layer.Annotations?.GetValueOrDefault(Annotations.OstreeComponents) ?? "")
        .Split(',', StringSplitOptions.RemoveEmptyEntries).ToList();

    /// <summary>Files and bytes per component, when the layer says (null otherwise).</summary>
    public static List<(string Name, int Files, long Bytes)>? Stats(Descriptor layer) =>
        ComponentStats.Parse(layer.Annotations?.GetValueOrDefault(Annotations.ComponentStats));

    /// <summary>The plan an image was built with, read back from its layers (layers naming no components are left out).</summary>
    public static ChunkPlan PlanOf(ImageManifest manifest) =>
        new(manifest.Layers.Select(l => (Names: Components(l), l.Size)).Where(x => x.Names.Count > 0)
            .Select(x => new PlannedLayer(x.Names, x.Size)).ToList());
}
