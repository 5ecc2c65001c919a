//! QR code images of VietQR payloads, rendered with the `qrcode` crate: error correction level M
//! (what banking apps expect of VietQR), with the 4-module quiet zone scanners need.

use qrcode::render::svg;
use qrcode::{Color, EcLevel, QrCode};

#[derive(Debug, thiserror::Error)]
pub enum QrImageError {
    #[error("the payload cannot be encoded as a QR code: {0}")]
    Encode(#[from] qrcode::types::QrError),
    #[error("PNG encoding failed: {0}")]
    Png(#[from] png::EncodingError),
}

/// Quiet zone around the code, in modules (ISO/IEC 18004 asks for four).
const QUIET_ZONE_MODULES: usize = 4;

fn code(payload: &str) -> Result<QrCode, QrImageError> {
    Ok(QrCode::with_error_correction_level(payload.as_bytes(), EcLevel::M)?)
}

/// A scalable SVG, at least 320 px wide.
pub fn svg(payload: &str) -> Result<String, QrImageError> {
    Ok(code(payload)?
        .render::<svg::Color<'_>>()
        .min_dimensions(320, 320)
        .quiet_zone(true)
        .dark_color(svg::Color("#000000"))
        .light_color(svg::Color("#ffffff"))
        .build())
}

/// A greyscale PNG with `module_px` pixels per module.
pub fn png(payload: &str, module_px: usize) -> Result<Vec<u8>, QrImageError> {
    let code = code(payload)?;
    let modules = code.width();
    let colors = code.to_colors();
    let side_modules = modules + 2 * QUIET_ZONE_MODULES;
    let side = side_modules * module_px;
    let mut pixels = vec![255u8; side * side];
    for (index, color) in colors.iter().enumerate() {
        if *color != Color::Dark {
            continue;
        }
        let (mx, my) = (index % modules + QUIET_ZONE_MODULES, index / modules + QUIET_ZONE_MODULES);
        for row in my * module_px..(my + 1) * module_px {
            pixels[row * side + mx * module_px..row * side + (mx + 1) * module_px].fill(0);
        }
    }
    let mut out = Vec::new();
    let side_u32 = u32::try_from(side).unwrap_or(u32::MAX);
    let mut encoder = png::Encoder::new(&mut out, side_u32, side_u32);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(&pixels)?;
    writer.finish()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAYLOAD: &str = "00020101021238560010A0000007270126000697041501121133666688880208QRIBFTTA530370454061500005802VN62240820H34.22.6-240426-000263044396";

    #[test]
    fn the_png_decodes_back_to_the_payload_byte_for_byte() {
        let bytes = png(PAYLOAD, 6).unwrap();
        let decoder = ::png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut buffer = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buffer).unwrap();
        let (w, h) = (info.width as usize, info.height as usize);
        let mut image = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| buffer[y * w + x]);
        let grids = image.detect_grids();
        assert_eq!(grids.len(), 1);
        let (meta, content) = grids[0].decode().unwrap();
        assert_eq!(content, PAYLOAD);
        assert_eq!(meta.ecc_level, 0, "rqrr numbers ECC levels M=0, L=1, H=2, Q=3");
    }

    #[test]
    fn the_svg_is_a_standalone_image() {
        let image = svg(PAYLOAD).unwrap();
        assert!(image.starts_with("<?xml") && image.contains("<svg") && image.contains("#000000"));
    }
}
