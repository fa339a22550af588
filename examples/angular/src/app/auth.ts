/**
 * Stands for an application's auth service. rxamqp asks it for credentials before every connection
 * attempt (the first and each reconnect), so a token that changed meanwhile is the one sent. A real
 * one would return the current OAuth 2 access token and its expiry (`expiresAt`), and rxamqp would
 * refresh it on the open connection before it expires.
 */
import { Injectable, inject } from '@angular/core';
import type { ProvidedCredentials } from 'rxamqp';
import { SETTINGS } from './settings';

@Injectable({ providedIn: 'root' })
export class Auth {
  private readonly settings = inject(SETTINGS);

  credentials(): ProvidedCredentials {
    return { username: this.settings.username, password: this.settings.password };
  }
}
