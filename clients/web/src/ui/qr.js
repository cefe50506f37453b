/**
 * QR codes: drawing the invite (qrcode-generator) and reading one from the camera or a
 * picture (jsqr). Nothing leaves the device.
 */
import qrcode from 'qrcode-generator';
import jsQR from 'jsqr';

/** A canvas showing `text` as a QR code, with a quiet zone. */
export function qrCanvas(text, scale = 6) {
  const qr = qrcode(0, 'M');
  qr.addData(text, 'Byte');
  qr.make();
  const count = qr.getModuleCount();
  const quiet = 4;
  const size = (count + 2 * quiet) * scale;
  const canvas = document.createElement('canvas');
  canvas.width = size;
  canvas.height = size;
  const context = canvas.getContext('2d');
  context.fillStyle = '#fff';
  context.fillRect(0, 0, size, size);
  context.fillStyle = '#000';
  for (let row = 0; row < count; row += 1) {
    for (let col = 0; col < count; col += 1) {
      if (qr.isDark(row, col)) context.fillRect((col + quiet) * scale, (row + quiet) * scale, scale, scale);
    }
  }
  canvas.setAttribute('aria-label', 'Invite code as a QR code');
  canvas.className = 'qr';
  return canvas;
}

/** The text of a QR code in an image (a File or Blob), or null. */
export async function decodeQrFile(file) {
  const bitmap = await createImageBitmap(file);
  const canvas = document.createElement('canvas');
  canvas.width = bitmap.width;
  canvas.height = bitmap.height;
  const context = canvas.getContext('2d', { willReadFrequently: true });
  context.drawImage(bitmap, 0, 0);
  const image = context.getImageData(0, 0, canvas.width, canvas.height);
  return jsQR(image.data, image.width, image.height)?.data ?? null;
}

/**
 * Scan with the camera until a QR code is seen. Returns a stop function.
 * @param {HTMLVideoElement} video
 * @param {(text: string) => void} onText
 */
export async function scanWithCamera(video, onText) {
  const stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: 'environment' } });
  video.srcObject = stream;
  video.setAttribute('playsinline', '');
  await video.play();
  const canvas = document.createElement('canvas');
  const context = canvas.getContext('2d', { willReadFrequently: true });
  let stopped = false;
  const stop = () => {
    stopped = true;
    stream.getTracks().forEach((track) => track.stop());
  };
  const look = () => {
    if (stopped) return;
    if (video.readyState >= 2) {
      canvas.width = video.videoWidth;
      canvas.height = video.videoHeight;
      context.drawImage(video, 0, 0);
      const image = context.getImageData(0, 0, canvas.width, canvas.height);
      const found = jsQR(image.data, image.width, image.height);
      if (found) {
        stop();
        onText(found.data);
        return;
      }
    }
    requestAnimationFrame(look);
  };
  requestAnimationFrame(look);
  return stop;
}
