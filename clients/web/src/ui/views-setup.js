/** The screens before a space: first start, unlock, and the choice to start or join. */
import { h, formValues } from './dom.js';
import { WrongPassphrase } from '../app/keystore.js';

export function setupView(app, ui) {
  const relay = ui.defaultRelay();
  const form = h(
    'form',
    {
      class: 'card',
      onsubmit: async (event) => {
        event.preventDefault();
        const values = formValues(form);
        if (values.passphrase.length < 8) return ui.say('Please choose a passphrase of at least 8 characters.');
        if (values.passphrase !== values.again) return ui.say('The two passphrases are not the same yet.');
        ui.busy('Making your keys on this device…');
        await app.createProfile({ passphrase: values.passphrase, name: values.name.trim(), relay: values.relay.trim() });
        await app.createSpace('just me', 'private');
        ui.go('home');
      },
    },
    h('h1', {}, 'Welcome to Accord'),
    h('p', {}, 'Your keys are made here and stay on this device, protected by a passphrase only you know.'),
    h('label', {}, 'Your name, as your partner will see it', h('input', { name: 'name', required: true, maxlength: 64, autocomplete: 'nickname' })),
    h('label', {}, 'Passphrase', h('input', { name: 'passphrase', type: 'password', required: true, autocomplete: 'new-password' })),
    h('label', {}, 'Passphrase again', h('input', { name: 'again', type: 'password', required: true, autocomplete: 'new-password' })),
    h('label', {}, 'Relay address', h('input', { name: 'relay', type: 'url', required: true, value: relay })),
    h('button', { class: 'primary', type: 'submit' }, 'Create my keys'),
  );
  return form;
}

export function unlockView(app, ui) {
  const form = h(
    'form',
    {
      class: 'card',
      onsubmit: async (event) => {
        event.preventDefault();
        ui.busy('Opening…');
        try {
          await app.unlock(formValues(form).passphrase);
          ui.go('home');
        } catch (error) {
          if (!(error instanceof WrongPassphrase)) throw error;
          ui.say('That passphrase does not open this device’s keys. Take your time and try again.');
        }
      },
    },
    h('h1', {}, 'Accord'),
    h('label', {}, 'Passphrase', h('input', { name: 'passphrase', type: 'password', required: true, autocomplete: 'current-password' })),
    h('button', { class: 'primary', type: 'submit' }, 'Unlock'),
    h('button', { type: 'button', class: 'quiet', onclick: () => ui.quickExit() }, 'Quick exit and erase this device'),
  );
  return form;
}

export function startView(app, ui) {
  return h(
    'div',
    { class: 'card' },
    h('h1', {}, `Hello, ${app.profile.name}`),
    h('p', {}, 'You can start a shared space and invite your partner, or join the space your partner started.'),
    h(
      'button',
      {
        class: 'primary',
        onclick: async () => {
          const state = await app.createSpace('us');
          ui.openSpace(state);
          ui.go('invite');
        },
      },
      'Start our space and invite my partner',
    ),
    h('button', { onclick: () => ui.go('join') }, 'Join my partner’s space'),
  );
}
