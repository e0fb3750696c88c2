using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace Treechunk.Chunking;

/// <summary>
/// Cuts a sorted list of paths into runs whose boundaries depend only on the paths near them,
/// so adding, removing or changing one file moves at most the boundaries around it and every
/// other run keeps exactly its files. A run ends after a path whose hash falls below a
/// threshold proportional to the path's size (so runs average about the target size) once the
/// run holds at least a quarter of the target; a run never grows past twice the target.
/// </summary>
public static class ContentDefinedSplitter
{
    /// <summary>Bytes a tar header costs, so runs of many empty files still get cut.</summary>
    public const long EntryOverhead = 512;

    public static List<List<T>> Split<T>(IReadOnlyList<T> sortedItems, Func<T, string> path, Func<T, long> size, long target)
    {
        long min = target / 4, max = target * 2;
        var runs = new List<List<T>>();
        var current = new List<T>();
        long acc = 0;
        foreach (var item in sortedItems)
        {
            long s = size(item) + EntryOverhead;
            if (current.Count > 0 && acc + s > max)
            {
                runs.Add(current);
                current = [];
                acc = 0;
            }
            current.Add(item);
            acc += s;
            if (acc >= min && IsBoundary(path(item), s, target - min))
            {
                runs.Add(current);
                current = [];
                acc = 0;
            }
        }
        if (current.Count > 0) runs.Add(current);
        return runs;
    }

    /// <summary>Cuts by accumulated size alone (the "fixed" algorithm): a run ends once it reaches the target.</summary>
    public static List<List<T>> SplitFixed<T>(IReadOnlyList<T> sortedItems, Func<T, long> size, long target)
    {
        var runs = new List<List<T>>();
        var current = new List<T>();
        long acc = 0;
        foreach (var item in sortedItems)
        {
            current.Add(item);
            acc += size(item) + EntryOverhead;
            if (acc >= target)
            {
                runs.Add(current);
                current = [];
                acc = 0;
            }
        }
        if (current.Count > 0) runs.Add(current);
        return runs;
    }

    private static bool IsBoundary(string path, long size, long span)
    {
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(Posix.FileNames.Encode(path), hash);
        double h = BinaryPrimitives.ReadUInt64BigEndian(hash) / (double)ulong.MaxValue;
        return h < Math.Min(1.0, size / (double)Math.Max(1, span));
    }
}
