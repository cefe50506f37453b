/**
 * Pairing screens. The inviting device shows a QR code and a typed code, then the joiner's
 * name, fingerprint and the 6-digit check, and asks its person to approve. The joining
 * device scans with the camera, reads a picture, or takes a typed code; it never shows an
 * approve button. Wording stays calm: no countdown pressure, no blame when a code expires.
 */
import { h, formValues } from './dom.js';
import { decodeQrFile, qrCanvas, scanWithCamera } from './qr.js';
import { toHex } from '../protocol/crypto.js';

export function inviteView(app, ui, state) {
  const pairing = ui.pairing;
  if (pairing === null || pairing.role !== 'inviter') {
    startInvite(app, ui, state);
    return h('div', { class: 'card' }, h('p', {}, 'Preparing an invitation…'));
  }
  const box = h('div', { class: 'card pairing', 'data-step': pairing.step });
  if (pairing.step === 'showing') {
    box.append(
      pairing.purpose === 'self'
        ? [
            h('h2', {}, 'Link another device of yours'),
            h('p', {}, 'On your other device, open Accord, choose to join and scan this code.'),
          ]
        : [
            h('h2', {}, 'Invite your partner'),
            h('p', {}, 'On their phone, they open Accord, choose “Join my partner’s space” and scan this code.'),
          ],
      (pairing.canvas ??= qrCanvas(pairing.uri)),
      h('p', {}, 'Or they can type this code:'),
      h('p', { class: 'code', 'data-code': pairing.code }, pairing.code),
      h('p', { class: 'note' }, 'The code works for two minutes and only once.'),
    );
  } else if (pairing.step === 'request') {
    box.append(
      h('h2', {}, 'Someone wants to join'),
      h('p', {}, 'Name: ', h('strong', { class: 'joiner-name' }, pairing.request.name)),
      h('p', {}, 'Check that both screens show the same number:'),
      h('p', { class: 'sas', 'data-sas': pairing.request.sas }, pairing.request.sas),
      h('p', { class: 'note' }, `Device fingerprint: ${pairing.request.fingerprint}`),
      h('button', { class: 'primary', onclick: () => pairing.answer(true) }, 'Yes, let them in'),
      h('button', { onclick: () => pairing.answer(false) }, 'No, not this device'),
    );
  } else if (pairing.step === 'adding') {
    box.append(h('p', {}, 'Adding them to your space…'));
  } else {
    box.append(h('h2', {}, pairing.title), h('p', {}, pairing.text), h('button', { class: 'primary', onclick: () => ui.finishPairing() }, 'Done'));
  }
  return box;
}

function startInvite(app, ui, state) {
  const purpose = ui.param === 'self' ? 'self' : 'partner';
  const pairing = { role: 'inviter', step: 'starting', purpose };
  ui.pairing = pairing;
  app
    .invite(state, {
      purpose,
      onInvite: ({ uri, code }) => {
        Object.assign(pairing, { step: 'showing', uri, code });
        ui.render();
      },
      decide: (request) =>
        new Promise((resolve) => {
          Object.assign(pairing, {
            step: 'request',
            request,
            answer: (yes) => {
              pairing.step = yes ? 'adding' : 'ended';
              if (!yes) Object.assign(pairing, { title: 'Not added', text: 'Nothing was shared with that device.' });
              ui.render();
              resolve(yes);
            },
          });
          ui.render();
        }),
    })
    .then((outcome) => {
      if (outcome === 'joined') {
        const text = purpose === 'self' ? 'Your other device is now part of your space, as you.' : 'Your partner’s device is now part of your space.';
        Object.assign(pairing, { step: 'ended', title: 'You are connected', text });
      }
      ui.render();
    })
    .catch((error) => {
      Object.assign(pairing, {
        step: 'ended',
        title: 'The invitation ended',
        text: `It did not complete (${error.code ?? 'error'}). You can start a new one whenever you like.`,
      });
      ui.render();
    });
}

export function joinView(app, ui) {
  const pairing = ui.pairing;
  if (pairing !== null && pairing.role === 'joiner') {
    const box = h('div', { class: 'card pairing', 'data-step': pairing.step });
    if (pairing.step === 'offered') {
      box.append(
        h('h2', {}, `Joining ${pairing.offer.name}’s space`),
        h('p', {}, 'Check that both screens show the same number:'),
        h('p', { class: 'sas', 'data-sas': pairing.offer.sas }, pairing.offer.sas),
        h('p', { class: 'note' }, 'Waiting for them to approve on their device.'),
      );
    } else if (pairing.step === 'working') {
      box.append(h('p', {}, 'Connecting…'));
    } else {
      box.append(h('h2', {}, pairing.title), h('p', {}, pairing.text), h('button', { class: 'primary', onclick: () => ui.finishPairing() }, 'Continue'));
    }
    return box;
  }
  const video = h('video', { class: 'camera', muted: true, hidden: true });
  let stopCamera = null;
  const begin = (input) => {
    if (stopCamera) stopCamera();
    startJoin(app, ui, input);
  };
  const typed = h(
    'form',
    {
      onsubmit: (event) => {
        event.preventDefault();
        begin(formValues(typed).code);
      },
    },
    h('label', {}, 'Type the code', h('input', { name: 'code', autocomplete: 'off', autocapitalize: 'none', placeholder: '42-acorn-apple-river-zinc' })),
    h('button', { type: 'submit' }, 'Join with this code'),
  );
  return h(
    'div',
    { class: 'card' },
    h('h2', {}, 'Join your partner’s space'),
    h('p', {}, 'Your partner’s device shows a QR code. Scan it, or type the code shown under it.'),
    h(
      'button',
      {
        class: 'primary',
        onclick: async () => {
          try {
            video.hidden = false;
            stopCamera = await scanWithCamera(video, begin);
          } catch {
            video.hidden = true;
            ui.say('The camera is not available. You can choose a picture of the code or type it instead.');
          }
        },
      },
      'Scan with the camera',
    ),
    video,
    h(
      'label',
      { class: 'file' },
      'Or choose a picture of the code',
      h('input', {
        type: 'file',
        accept: 'image/*',
        name: 'picture',
        onchange: async (event) => {
          const file = event.target.files[0];
          if (!file) return;
          const text = await decodeQrFile(file);
          if (text === null) ui.say('No QR code was found in that picture. Another picture, or the typed code, may work.');
          else begin(text);
        },
      }),
    ),
    typed,
  );
}

function startJoin(app, ui, input) {
  const pairing = { role: 'joiner', step: 'working' };
  ui.pairing = pairing;
  ui.render();
  app
    .join({
      input,
      onOffer: (offer) => {
        Object.assign(pairing, { step: 'offered', offer });
        ui.render();
      },
    })
    .then((result) => {
      if (result.outcome === 'joined') {
        Object.assign(pairing, { step: 'ended', title: 'You are connected', text: 'Your device is now part of your shared space.' });
        ui.openSpace(app.spaceByHex(toHex(result.space)));
      } else {
        Object.assign(pairing, { step: 'ended', title: 'Not joined', text: 'The other device did not add this one. Nothing was shared.' });
      }
      ui.render();
    })
    .catch((error) => {
      Object.assign(pairing, {
        step: 'ended',
        title: 'Joining did not complete',
        text: `The code may have been used already or expired (${error.code ?? 'error'}). A new invitation will work.`,
      });
      ui.render();
    });
}
