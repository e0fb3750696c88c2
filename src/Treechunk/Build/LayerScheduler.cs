using Treechunk.Layers;
using Treechunk.Oci;
using Treechunk.Trees;

namespace Treechunk.Build;

/// <summary>
/// Writes a plan's layers in parallel: largest first, handed out one at a time from a shared
/// counter (chunked partitioning would give one worker several big layers), so the workers
/// finish together. A failed layer stops the others from taking new work.
/// </summary>
public static class LayerScheduler
{
    public static WrittenLayer[] WriteAll(ITree tree, IReadOnlyList<List<TreeEntry>> contents, IImageDestination destination,
        LayerSettings settings, int parallel, IBuildProgress progress)
    {
        var written = new WrittenLayer[contents.Count];
        var order = new List<int>(contents.Count);
        var sizes = contents.Select(c => c.Sum(e => e.Size)).ToArray();
        for (int i = 0; i < contents.Count; i++) order.Add(i);
        order.Sort((a, b) => sizes[b].CompareTo(sizes[a]) is var c && c != 0 ? c : a.CompareTo(b));
        int next = -1;
        void Worker(int _, ParallelLoopState state)
        {
            for (int k; !state.ShouldExitCurrentIteration && (k = Interlocked.Increment(ref next)) < order.Count;)
            {
                var i = order[k];
                written[i] = LayerWriter.Write(tree, contents[i], destination, settings);
                progress.LayerDone(i, written[i].UncompressedSize);
            }
        }
        Parallel.For(0, Math.Min(parallel, order.Count), new ParallelOptions { MaxDegreeOfParallelism = parallel }, Worker);
        return written;
    }
}
