using System.Security.Cryptography;
using Treechunk.Layers;

namespace Treechunk.Tests.Oci;

/// <summary>zstd:chunked's content-defined pieces: bounded, and an edit moves only the cuts near it.</summary>
public class ContentPiecesTests
{
    private static List<string> Pieces(byte[] data)
    {
        var result = new List<string>();
        for (int at = 0; at < data.Length;)
        {
            var window = data.AsSpan(at, Math.Min(ContentPieces.MaxPiece, data.Length - at));
            int cut = ContentPieces.Cut(window);
            Assert.InRange(cut, 1, ContentPieces.MaxPiece);
            if (at + cut < data.Length) Assert.True(cut >= ContentPieces.MinPiece, $"a piece of {cut} bytes before the end");
            result.Add(Convert.ToHexStringLower(SHA256.HashData(data.AsSpan(at, cut))));
            at += cut;
        }
        return result;
    }

    [Fact]
    public void An_insertion_changes_only_the_pieces_around_it()
    {
        var rng = new Random(3);
        var data = new byte[4 << 20];
        rng.NextBytes(data);
        var edited = data[..(2 << 20)].Concat(new byte[100]).Concat(data[(2 << 20)..]).ToArray();
        var before = Pieces(data);
        var after = Pieces(edited);
        // About 96 KiB on average: tens of pieces, and all but one or two survive the edit.
        Assert.InRange(before.Count, 4 * 1024 / 256, 4 * 1024 / 32);
        Assert.True(before.Except(after).Count() <= 2, $"{before.Except(after).Count()} of {before.Count} pieces changed");
    }

    [Fact]
    public void Runs_without_a_cut_point_are_cut_at_the_maximum()
    {
        var zeros = new byte[ContentPieces.MaxPiece];
        // A run of one byte value keeps the gear hash periodic; either it cuts or the maximum does.
        Assert.InRange(ContentPieces.Cut(zeros), ContentPieces.MinPiece, ContentPieces.MaxPiece);
        Assert.Equal(1000, ContentPieces.Cut(zeros.AsSpan(0, 1000)));
    }
}
