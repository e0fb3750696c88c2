using System.Text;
using FsCheck;
using FsCheck.Fluent;
using Treechunk.Posix;

namespace Treechunk.Tests.Posix;

/// <summary>The file-name codec is lossless both ways and leaves valid UTF-8 alone.</summary>
public class FileNamesTests
{
    [FsCheck.Xunit.Property(MaxTest = 500)]
    public Property Any_bytes_come_back_as_they_were(byte[] bytes) =>
        FileNames.Encode(FileNames.Decode(bytes)).AsSpan().SequenceEqual(bytes).ToProperty();

    [FsCheck.Xunit.Property(MaxTest = 500)]
    public Property Valid_text_decodes_as_utf8_and_has_no_escapes(NonNull<string> text)
    {
        var s = text.Get;
        if (s.AsSpan().IndexOfAnyInRange('\uD800', '\uDFFF') >= 0) return true.ToProperty(); // not valid UTF-16 text
        var bytes = Encoding.UTF8.GetBytes(s);
        return (FileNames.Decode(bytes) == s && !FileNames.HasEscapedBytes(s) && FileNames.Encode(s).AsSpan().SequenceEqual(bytes)).ToProperty();
    }

    [Theory]
    [InlineData(new byte[] { 0x62, 0x61, 0x64, 0xff, 0x6e }, "bad\\xffn")]
    [InlineData(new byte[] { 0x63, 0x61, 0x66, 0xe9 }, "caf\\xe9")]
    [InlineData(new byte[] { 0xe2, 0x82 }, "\\xe2\\x82")]                 // a cut-off sequence
    [InlineData(new byte[] { 0xed, 0xb2, 0x80 }, "\\xed\\xb2\\x80")]     // an encoded surrogate is not UTF-8
    [InlineData(new byte[] { 0x61, 0x0a, 0x62, 0x09 }, "a\\x0ab\\x09")]  // control characters
    [InlineData(new byte[] { 0xc3, 0xa9, 0x74, 0xc3, 0xa9 }, "été")]     // valid UTF-8 shown as itself
    public void Display_escapes_what_is_not_printable_utf8(byte[] bytes, string shown) =>
        Assert.Equal(shown, FileNames.Display(FileNames.Decode(bytes)));

    [Fact]
    public void A_lone_surrogate_that_no_name_can_have_is_refused()
    {
        Assert.Throws<TreechunkException>(() => FileNames.Encode("x\uD800y"));
        Assert.Throws<TreechunkException>(() => FileNames.Encode("x\uDC10y")); // below the escape range
        Assert.Equal([0x78, 0x00], FileNames.EncodeZ("x"));
    }
}
